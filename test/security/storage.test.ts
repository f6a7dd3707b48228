// Points 3 and 9 of issue 12. A full disk used to answer 500 while the job still ran (a ghost: no id,
// no row; a retry ran it twice), the log said only "cannot rollback", and /ready stayed true. A job
// store deleted under a running gateway went unnoticed. A corrupt database crashed start-up with a
// stack trace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { SqliteJobStore } from '../../src/jobs/index.ts';
import { invertPrompt, startTestStack } from '../support/gateway.ts';
import { waitTerminal } from './support.ts';

/** A real small filesystem when this process may mount one (root); null otherwise. */
function mountTmpfs(dir: string, size: string): (() => void) | null {
  if (process.getuid?.() !== 0) return null;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return () => execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
}

/**
 * Makes the store's disk "full" and returns the function that frees the space again: on a real
 * 4 MiB tmpfs a filler file takes every free byte; without mount rights the database is capped at a
 * page count and a second connection fills it (SQLite answers SQLITE_FULL the same way).
 */
function diskFiller(dir: string, dbPath: string, tmpfs: boolean): { fill(): void; free(): void } {
  if (tmpfs) {
    const filler = join(dir, 'filler');
    return {
      fill() {
        const chunk = Buffer.alloc(256 * 1024, 7);
        try {
          for (let i = 0; i < 1000; i++) writeFileSync(filler, chunk, { flag: 'a' });
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
          return;
        }
        assert.fail('the tmpfs never filled up');
      },
      free: () => rmSync(filler),
    };
  }
  const other = new DatabaseSync(dbPath);
  return {
    fill() {
      other.exec('CREATE TABLE IF NOT EXISTS filler (b BLOB)');
      for (let i = 0; i < 64; i++) other.exec('INSERT INTO filler VALUES (zeroblob(65536))');
    },
    free() {
      other.exec('DELETE FROM filler');
      other.close();
    },
  };
}

test('a full disk answers 503 storage_unavailable, runs nothing, reports not-ready, logs SQLite, and recovers', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-full-'));
  const unmount = mountTmpfs(dir, '4m');
  const dbPath = join(dir, 'jobs.sqlite');
  const errors: unknown[] = [];
  const { promise: recovered, resolve: onRecover } = Promise.withResolvers<void>();
  const store = new SqliteJobStore({
    path: dbPath,
    retryMs: 50,
    onError: (err) => errors.push(err),
    onRecover,
    // Without a real small filesystem: 1 MiB of pages, then SQLITE_FULL.
    ...(unmount ? {} : { maxPageCount: 256 }),
  });
  const stack = await startTestStack({ store });
  const filler = diskFiller(dir, dbPath, unmount !== null);
  try {
    const ok = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('before') } });
    assert.equal(ok.status, 201);
    assert.equal((await waitTerminal(stack.url, ok.body.id)).status, 'succeeded');
    const executedBefore = stack.sim.instances[0]?.stats.promptsExecuted;

    filler.fill();
    for (let i = 0; i < 5; i++) {
      const res = await stack.request('/api/v2/jobs', {
        body: { workflow: invertPrompt(`full-${i}`), metadata: { pad: 'x'.repeat(12_000) } },
        headers: { 'idempotency-key': `full-${i}` },
      });
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'storage_unavailable');
      assert.match(res.body.error.message, /full/i);
    }
    const ready = await stack.request('/ready');
    assert.equal(ready.status, 503);
    assert.match(ready.body.reason, /storage unavailable/);
    // The original SQLite error is what got logged, not the rollback that followed it.
    assert.ok(errors.length >= 1);
    assert.match(String((errors[0] as Error).message), /full/i);
    assert.doesNotMatch(String((errors[0] as Error).message), /rollback/i);
    // No ghost: nothing reached the instance, nothing is listed.
    const list = await stack.request('/api/v2/jobs?limit=100');
    assert.equal(list.body.jobs.length, 1);
    assert.equal(stack.sim.instances[0]?.stats.promptsExecuted, executedBefore);

    filler.free();
    await recovered;
    assert.equal((await stack.request('/ready')).status, 200);
    // The key of a refused submission was never consumed: the retry runs exactly once.
    const retry = await stack.request('/api/v2/jobs', {
      body: { workflow: invertPrompt('full-0') },
      headers: { 'idempotency-key': 'full-0' },
    });
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal((await waitTerminal(stack.url, retry.body.id)).status, 'succeeded');
  } finally {
    await stack.close();
    unmount?.();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a job store deleted under a running gateway is reported: error log, not-ready, 503 on submit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-gone-'));
  const errors: unknown[] = [];
  const { promise: noticed, resolve } = Promise.withResolvers<void>();
  const store = new SqliteJobStore({
    path: join(dir, 'jobs.sqlite'),
    identityCheckMs: 50,
    onError: (err) => {
      errors.push(err);
      resolve();
    },
  });
  const stack = await startTestStack({ store });
  try {
    assert.equal((await stack.request('/ready')).status, 200);
    await unlink(join(dir, 'jobs.sqlite'));
    await noticed;
    assert.match(String((errors[0] as Error).message), /deleted/);
    const ready = await stack.request('/ready');
    assert.equal(ready.status, 503);
    assert.match(ready.body.reason, /deleted/);
    const res = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt() } });
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'storage_unavailable');
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a corrupt or unreadable job database stops start-up with one line naming the file and the problem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-corrupt-'));
  try {
    const corrupt = join(dir, 'jobs.sqlite');
    writeFileSync(corrupt, Buffer.alloc(8192, 0x5a));
    const out = serve({ DATA_DIR: dir });
    assert.equal(out.status, 1);
    const lines = out.stderr.trim().split('\n');
    assert.equal(lines.length, 1, out.stderr);
    assert.match(lines[0] as string, /^Cannot open the job store .*jobs\.sqlite: file is not a database/);

    const asDir = join(dir, 'sub');
    mkdirSync(join(asDir, 'jobs.sqlite'), { recursive: true });
    const out2 = serve({ DATA_DIR: asDir });
    assert.equal(out2.status, 1);
    assert.equal(out2.stderr.trim().split('\n').length, 1, out2.stderr);
    assert.match(out2.stderr, /^Cannot open the job store .*jobs\.sqlite: /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function serve(env: Record<string, string>): { status: number | null; stderr: string } {
  try {
    execFileSync(process.execPath, ['src/cli/main.ts', 'serve', '--port', '1'], {
      env: { ...process.env, COMFYUI_URLS: 'http://127.0.0.1:9', LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 20_000,
    });
    return { status: 0, stderr: '' };
  } catch (err) {
    const e = err as { status: number | null; stderr: Buffer };
    return { status: e.status, stderr: e.stderr.toString() };
  }
}
