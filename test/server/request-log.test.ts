// Fastify's per-request log lines go at debug, not info (they were the largest per-job cost at the
// default LOG_LEVEL); a request that errors is still logged at error.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { JobManager, MemoryJobStore, type PoolLike } from '../../src/jobs/index.ts';
import { Pool } from '../../src/pool/index.ts';
import { buildApp, jobRoutes } from '../../src/server/index.ts';

async function appLogging(level: string): Promise<Array<{ level: number; msg: string }>> {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const pool = new Pool({
    instances: [],
    maxJobsPerInstance: 1,
    healthCheckIntervalMs: 60_000,
    healthFailureThreshold: 3,
  });
  const manager = new JobManager({
    store: new MemoryJobStore(),
    pool: pool as unknown as PoolLike,
    maxQueue: 10,
    maxAttempts: 1,
    jobTimeoutMs: 1000,
    retentionMs: 60_000,
  });
  const shutdown = new AbortController();
  const app = await buildApp({
    logger: pino({ level }, sink),
    apiKeys: [],
    maxBodyBytes: 1 << 20,
    docs: false,
    routes: [
      {
        plugin: jobRoutes,
        options: { manager, prepare: { canEverRun: () => ({ ok: true }) }, shutdownSignal: shutdown.signal },
      },
    ],
  });
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  try {
    assert.equal((await app.inject({ url: '/api/v2/jobs' })).statusCode, 200);
    assert.equal((await app.inject({ url: '/boom' })).statusCode, 500);
  } finally {
    shutdown.abort();
    await app.close();
    await manager.close();
    await pool.close();
  }
  return lines;
}

test('request lines are debug-level: none at info, both at debug; a 500 is logged at error either way', async () => {
  const info = await appLogging('info');
  assert.deepEqual(
    info.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed'),
    [],
  );
  assert.ok(
    info.some((l) => l.level === 50),
    'the failed request is logged at error',
  );
  const debug = await appLogging('debug');
  const completed = debug.filter((l) => l.msg === 'request completed');
  assert.equal(completed.length, 2, 'one line per request');
  assert.ok(completed.every((l) => l.level === 20));
  assert.ok(debug.some((l) => l.msg === 'incoming request' && l.level === 20));
});
