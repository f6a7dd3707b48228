import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JobManager, type PoolLike, SqliteJobStore } from '../../src/jobs/index.ts';
import { Pool } from '../../src/pool/index.ts';
import { startSimulator } from '../../src/simulator/index.ts';
import { invertPrompt } from '../support/gateway.ts';

test('finished jobs expire after the retention period: 404 at once, then swept from the store', async () => {
  const sim = await startSimulator({ port: 0, instances: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'gw-retention-'));
  const pool = new Pool({
    instances: [{ url: sim.instances[0]?.url as string }],
    maxJobsPerInstance: 2,
    healthCheckIntervalMs: 1000,
    healthFailureThreshold: 3,
  });
  let now = Date.now();
  const store = new SqliteJobStore({ path: join(dir, 'jobs.sqlite') });
  const manager = new JobManager({
    store,
    pool: pool as unknown as PoolLike,
    maxQueue: 10,
    maxAttempts: 2,
    jobTimeoutMs: 10_000,
    retentionMs: 60_000,
    clock: () => now,
  });
  try {
    await pool.start();
    await manager.start();
    const job = await manager.create({ workflow: invertPrompt('ret') });
    const done = await manager.waitForTerminal(job.id, AbortSignal.timeout(10_000));
    assert.equal(done.status, 'succeeded');
    assert.equal(done.expires_at, (done.completed_at as number) + 60_000, 'retention counts from the end');
    now += 59_000;
    assert.equal(manager.get(job.id)?.status, 'succeeded');
    assert.equal(manager.sweep(), 0);
    now += 2_000;
    assert.equal(manager.get(job.id), undefined, 'past expires_at it is gone for readers');
    assert.equal(manager.list({ limit: 10 }).jobs.length, 0);
    assert.equal(manager.sweep(), 1, 'and the sweep deletes it');
    assert.equal(store.get(job.id), undefined);
  } finally {
    await manager.close();
    await pool.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
});
