// The gateway's log destinations gather lines and write them together (at most every 100 ms, and
// at exit): every line still reaches stdout and LOG_FILE, in order, including those logged just
// before the process exits and after the gateway closed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createLogger } from '../../src/server/logger.ts';

const run = promisify(execFile);
const LOGGER = new URL('../../src/server/logger.ts', import.meta.url).href;

const settings = (logFile: string | undefined) =>
  ({
    logLevel: 'info',
    logFile,
    logRotateSize: undefined,
    logRotateFrequency: undefined,
    logRotateKeep: 10,
  }) as Parameters<typeof createLogger>[0];

const messages = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { msg: string }).msg);

/**
 * Runs `body` in a child process after `const { logger } = createLogger(…)` with a LOG_FILE of its
 * own; resolves with its stdout, the file's text, and the error it exited with (null when it did not).
 */
async function inChild(body: string): Promise<{ stdout: string; file: string; error: unknown }> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-log-'));
  const logFile = join(dir, 'gateway.log');
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)});
    const { logger } = createLogger({ logLevel: 'info', logFile: process.argv[1], logRotateKeep: 10 });
    ${body}`;
  try {
    const exited = await run(process.execPath, ['--input-type=module', '-e', script, logFile]).then(
      ({ stdout }) => ({ stdout, error: null as unknown }),
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? '', error: error as unknown }),
    );
    return { ...exited, file: await readFile(logFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('batched log destinations', () => {
  test('lines reach LOG_FILE in order within the flush period, and all of them by close()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-log-'));
    const file = join(dir, 'logs', 'gateway.log');
    const { logger, close } = createLogger(settings(file));
    try {
      for (let i = 0; i < 5; i++) logger.info(`line ${i}`);
      let seen: string[] = [];
      for (const start = Date.now(); Date.now() - start < 2000; ) {
        seen = messages(await readFile(file, 'utf8').catch(() => ''));
        if (seen.length === 5) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(seen, ['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
      logger.info('last');
    } finally {
      await close();
      await close();
    }
    assert.deepEqual(messages(await readFile(file, 'utf8')).slice(4), ['line 4', 'last']);
    // Logged after close (a second signal during shutdown): dropped for the closed file, no throw.
    logger.warn('after close');
    await rm(dir, { recursive: true, force: true });
  });

  test('a line logged just before process.exit() reaches stdout and the file', async () => {
    const { stdout, file, error } = await inChild(`logger.info('before exit'); process.exit(0);`);
    assert.equal(error, null);
    assert.deepEqual(messages(stdout), ['before exit']);
    assert.deepEqual(messages(file), ['before exit']);
  });

  test('a burst larger than the gathering bound is written at once, not held for the timer', async () => {
    // 100 lines of ~1 KB, then kill -9 before the 100 ms timer: what gathered past 64 Ki
    // characters was written; only the tail since the last write can be lost.
    const { file, error } = await inChild(`
      for (let i = 0; i < 100; i++) logger.info('x'.repeat(1000) + i);
      process.kill(process.pid, 'SIGKILL');`);
    assert.equal((error as { signal?: string } | null)?.signal, 'SIGKILL');
    const written = messages(file);
    assert.ok(written.length >= 60 && written.length < 100, `${written.length} lines written`);
    assert.equal(written[0], `${'x'.repeat(1000)}0`);
  });

  test('many loggers share one exit handler, and closing them removes it', async () => {
    const before = process.listenerCount('exit');
    const loggers = Array.from({ length: 20 }, () => createLogger(settings(undefined)));
    assert.ok(process.listenerCount('exit') <= before + 1);
    for (const l of loggers) await l.close();
    assert.equal(process.listenerCount('exit'), before);
  });
});
