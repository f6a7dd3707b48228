// What a job costs in Redis on one gateway, counted by a redis-server of the test's own (INFO
// commandstats; nothing else uses it): the job's record is read back only when another gateway
// could have written it, and its admission and queue entry go out together.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { type PrivateRedis, redisUnavailable, startPrivateRedis, testPrefix } from '../support/fleet.ts';
import { invertPrompt } from '../support/gateway.ts';

const unavailable = await redisUnavailable();

/** Calls per command name so far. */
async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    out[m[1] as string] = Number(m[2]);
  return out;
}

describe('Redis commands of a job on one gateway', { skip: unavailable || false }, () => {
  let redis: PrivateRedis;
  let client: Redis;
  let sim: Simulator;
  let dir: string;
  let gateway: Gateway;

  before(async () => {
    redis = await startPrivateRedis();
    client = new Redis(redis.url);
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    dir = await mkdtemp(join(tmpdir(), 'gw-fleet-rt-'));
    const config = loadConfig({
      COMFYUI_URLS: sim.instances.map((s) => s.url).join(','),
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: testPrefix('rt'),
      DATA_DIR: dir,
      STORAGE_URL: `file://${join(dir, 'storage')}`,
    });
    gateway = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
  });

  after(async () => {
    await gateway?.close();
    client?.disconnect();
    await redis?.stop();
    await sim?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a job the admitting gateway takes itself is never read back; admission and entry are one transaction; the entry is completed after the terminal state is stored', async () => {
    const run = async (tag: string) => {
      const res = await fetch(`${gateway.url}/api/v2/jobs?wait=10`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: invertPrompt(tag) }),
      });
      assert.equal(((await res.json()) as { status: string }).status, 'succeeded');
    };
    await run('warm');
    // Reads of job records sent by the gateway (not those inside BullMQ's scripts).
    const monitor = await client.duplicate().monitor();
    const reads: string[] = [];
    // Per job, in Redis's order: its terminal state written, its queue entry completed.
    const order: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const [name, key, ...rest] = args.map(String);
      if (source !== 'lua' && name?.toLowerCase() === 'hmget' && key?.includes(':job:'))
        reads.push(args.join(' '));
      if (source !== 'lua') return;
      if (name === 'HSET' && key?.includes(':job:') && rest[1] === 'succeeded')
        order.push(`stored ${key.slice(key.lastIndexOf(':') + 1)}`);
      if (name === 'LREM' && key?.endsWith(':active')) order.push(`completed ${rest[1]}`);
    });
    const before = await commandCalls(client);
    const jobs = 5;
    try {
      for (let i = 0; i < jobs; i++) await run(`j${i}`);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      monitor.disconnect();
    }
    const now = await commandCalls(client);
    // The record with its workflow is read only by a gateway that did not admit the job.
    assert.deepEqual(reads, []);
    assert.equal((now.exec ?? 0) - (before.exec ?? 0), jobs, 'one MULTI per submission');
    // A gateway killed between the two must not leave a record that never ends without an entry.
    const completed = order.filter((o) => o.startsWith('completed '));
    assert.equal(completed.length, jobs, JSON.stringify(order));
    for (const c of completed) {
      const id = c.slice('completed '.length);
      assert.ok(
        order.indexOf(`stored ${id}`) >= 0 && order.indexOf(`stored ${id}`) < order.indexOf(c),
        JSON.stringify(order),
      );
    }
  });
});
