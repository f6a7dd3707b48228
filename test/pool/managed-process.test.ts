// ManagedProcess: spawn, wait ready, capture logs, restart on exit with backoff, stop with
// SIGTERM then SIGKILL, idempotent and concurrent-safe start/stop, clear failed starts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { ManagedProcess, ManagedProcessError } from '../../src/pool/index.ts';
import { freePort, waitFor } from './helpers.ts';

const STUB = join(import.meta.dirname, 'fixtures', 'stubborn-server.ts');

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('starts, captures log lines, restarts after a crash and stops', async (t) => {
  const port = await freePort();
  const { logger, lines } = capture();
  const proc = new ManagedProcess({
    id: 'stub',
    command: [process.execPath, STUB, '{port}'],
    port,
    logger,
    restartDelayMs: 50,
  });
  t.after(() => proc.close());
  // Concurrent starts share one spawn.
  await Promise.all([proc.start(), proc.start(), proc.start()]);
  assert.equal(proc.state, 'running');
  const firstPid = proc.pid!;
  assert.ok(alive(firstPid));
  const response = await fetch(`${proc.url}/system_stats`);
  assert.equal(response.status, 200);
  await response.body?.cancel();
  await waitFor(
    proc,
    'state',
    () => lines.some((l) => l.msg === `stub listening on ${port}`),
    5000,
    'log line',
  );
  const logged = lines.find((l) => l.msg === `stub listening on ${port}`)!;
  assert.equal(logged.instance, 'stub');
  assert.equal(logged.stream, 'stdout');

  const ready = once(proc, 'ready');
  process.kill(firstPid, 'SIGKILL');
  const [exit] = await once(proc, 'exit');
  assert.equal(exit.signal, 'SIGKILL');
  await ready;
  assert.equal(proc.state, 'running');
  assert.notEqual(proc.pid, firstPid);
  assert.equal(proc.restarts, 1);

  const secondPid = proc.pid!;
  await Promise.all([proc.stop(), proc.stop()]);
  assert.equal(proc.state, 'stopped');
  assert.equal(proc.pid, undefined);
  assert.equal(alive(secondPid), false);
  await proc.stop();
  assert.equal(proc.state, 'stopped');
});

test('kills a process that ignores SIGTERM after the grace period', async (t) => {
  const port = await freePort();
  const proc = new ManagedProcess({
    id: 'stubborn',
    command: [process.execPath, STUB, '{port}', '--ignore-sigterm'],
    port,
    stopGraceMs: 300,
  });
  t.after(() => proc.close());
  await proc.start();
  const pid = proc.pid!;
  const started = performance.now();
  await proc.stop();
  const took = performance.now() - started;
  assert.ok(took >= 250, `stop took ${took} ms: should have waited for the grace period`);
  assert.ok(took < 5000, `stop took ${took} ms`);
  assert.equal(alive(pid), false);
});

test('a process that exits before answering fails the start clearly and is retried with backoff', async (t) => {
  const port = await freePort();
  const proc = new ManagedProcess({
    id: 'crashy',
    command: [process.execPath, STUB, '{port}', '--exit-after-ms', '0', '--listen-after-ms', '10000'],
    port,
    restartDelayMs: 60_000,
  });
  t.after(() => proc.close());
  await assert.rejects(proc.start(), (error: unknown) => {
    assert.ok(error instanceof ManagedProcessError);
    assert.equal(error.code, 'managed_process_failed');
    assert.match(error.message, /crashy: exited before answering \(exit code 3\)/);
    return true;
  });
  assert.equal(proc.pid, undefined);
  assert.equal(proc.state, 'backoff');
  assert.match(proc.lastError ?? '', /exited before answering/);
  await proc.stop();
  assert.equal(proc.state, 'stopped');
});

test('a command that cannot be spawned fails the start', async (t) => {
  const proc = new ManagedProcess({ id: 'missing', command: '/nonexistent/comfyui --port {port}', port: 1 });
  t.after(() => proc.close());
  await assert.rejects(
    proc.start(),
    /missing: exited before answering \(spawn \/nonexistent\/comfyui ENOENT\)/,
  );
  assert.equal(proc.pid, undefined);
  await proc.close();
  assert.equal(proc.state, 'closed');
  await assert.rejects(proc.start(), /closed/);
});

test('a start that never answers times out and leaves no process behind', async (t) => {
  const port = await freePort();
  const proc = new ManagedProcess({
    id: 'slow',
    command: [process.execPath, STUB, '{port}', '--listen-after-ms', '60000'],
    port,
    startTimeoutMs: 400,
    restartDelayMs: 60_000,
  });
  t.after(() => proc.close());
  const spawned = once(proc, 'state');
  const starting = proc.start();
  await spawned;
  const pid = proc.pid!;
  await assert.rejects(starting, /slow: did not answer \/system_stats within 400 ms/);
  assert.equal(proc.pid, undefined);
  assert.equal(alive(pid), false);
});

test('stop() during a start aborts it', async (t) => {
  const port = await freePort();
  const proc = new ManagedProcess({
    id: 'aborted',
    command: [process.execPath, STUB, '{port}', '--listen-after-ms', '60000'],
    port,
  });
  t.after(() => proc.close());
  const starting = proc.start();
  await waitFor(proc, 'state', () => proc.pid !== undefined, 5000, 'spawn');
  await proc.stop();
  await assert.rejects(starting, /stopped while starting/);
  assert.equal(proc.state, 'stopped');
});

test('close() twice: the second call gets the first close and the process is gone when it resolves', async () => {
  const port = await freePort();
  const proc = new ManagedProcess({ id: 'closing', command: [process.execPath, STUB, '{port}'], port });
  await proc.start();
  const pid = proc.pid!;
  const first = proc.close();
  const second = proc.close();
  assert.equal(second, first);
  await second;
  assert.equal(proc.state, 'closed');
  assert.equal(alive(pid), false);
});
