// What a job costs in Redis on one gateway, watched on a redis-server of the test's own (INFO
// commandstats and MONITOR; nothing else uses it): a job the gateway can start at once never
// touches the queue; one that waits has its admission and queue entry go out together, is not read
// back by the gateway that admitted it, and its entry is completed after its terminal state is stored;
// one that another gateway runs ends at the admitting gateway with the record its terminal event carried.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { FleetJobManager } from '../../src/fleet/index.ts';
import { IdempotencyKeyReuseError } from '../../src/jobs/index.ts';
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
  const gateways: Gateway[] = [];

  /** A gateway on the private Redis with a prefix of its own (or `shared`'s); `env` overrides settings. */
  async function gateway(
    name: string,
    env: Record<string, string> = {},
    shared?: string,
  ): Promise<[Gateway, string]> {
    const prefix = shared ?? testPrefix(name);
    const config = loadConfig({
      COMFYUI_URLS: sim.instances.map((s) => s.url).join(','),
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      DATA_DIR: join(dir, name),
      STORAGE_URL: `file://${join(dir, 'storage')}`,
      ...env,
    });
    const g = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
    gateways.push(g);
    return [g, prefix];
  }

  before(async () => {
    redis = await startPrivateRedis();
    client = new Redis(redis.url);
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    dir = await mkdtemp(join(tmpdir(), 'gw-fleet-rt-'));
  });

  after(async () => {
    for (const g of gateways) await g.close();
    client?.disconnect();
    await redis?.stop();
    await sim?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** POST /api/v2/jobs?wait=10 of one small prompt at `g`; asserts it succeeded with its output. */
  const run = async (g: Gateway, tag: string) => {
    const res = await fetch(`${g.url}/api/v2/jobs?wait=10`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: invertPrompt(tag) }),
    });
    const job = (await res.json()) as { id: string; status: string; outputs?: unknown[] };
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.ok((job.outputs?.length ?? 0) > 0, JSON.stringify(job));
    return job.id;
  };

  /**
   * Every command Redis runs while `work` runs, as [source ('lua' or 'client'), name, ...args].
   * MONITOR on a plain socket: ioredis's monitor() fails now and then with "Command queue state
   * error" when a monitored line arrives with MONITOR's own reply.
   */
  async function monitored(work: () => Promise<void>): Promise<string[][]> {
    const { hostname, port } = new URL(redis.url);
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.setEncoding('utf8');
    const seen: string[][] = [];
    let buffer = '';
    const { promise: started, resolve } = Promise.withResolvers<void>();
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let end = buffer.indexOf('\r\n');
      while (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\r\n');
        if (line === '+OK') resolve();
        const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
        if (!m) continue;
        const args = [...(m[2] as string).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) =>
          (a[1] as string).replace(/\\(.)/g, '$1'),
        );
        seen.push([m[1] === 'lua' ? 'lua' : 'client', ...args]);
      }
    });
    socket.write('MONITOR\r\n');
    await started;
    try {
      await work();
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      socket.destroy();
    }
    return seen;
  }

  test('a job the gateway can start at once runs without a queue entry: one admission script, no queue command, never read back', async () => {
    const [g, prefix] = await gateway('here');
    await run(g, 'warm');
    const ids: string[] = [];
    const before = await commandCalls(client);
    const seen = await monitored(async () => {
      for (let i = 0; i < 5; i++) ids.push(await run(g, `h${i}`));
    });
    const now = await commandCalls(client);
    for (const id of ids) {
      const about = seen.filter((c) => c.some((a) => a.includes(id)));
      // BullMQ never heard of it: no command on its queue's keys names the job (the admission
      // script gets the name its entry would have, to mark a refusal).
      assert.deepEqual(
        about.filter(
          ([source, name, ...args]) =>
            !(source === 'client' && /^eval/i.test(name ?? '')) &&
            args.some((a) => a.includes(`${prefix}:bull:`)),
        ),
        [],
        'no queue entry',
      );
      // Its record with the workflow is never read back.
      assert.deepEqual(
        about.filter(
          ([source, name, key]) =>
            source === 'client' && name?.toLowerCase() === 'hmget' && key?.includes(':job:'),
        ),
        [],
      );
      // Named in the running hash at admission; taken out by the script that stores its end.
      const running = about.filter(
        ([, name, key]) => key === `${prefix}:running` && /^H(SET|DEL)$/i.test(name ?? ''),
      );
      assert.deepEqual(
        running.map(([source, name]) => `${source} ${name?.toUpperCase()}`),
        ['lua HSET', 'lua HDEL'],
      );
      const stored = about.findIndex(
        ([source, name, , ...rest]) => source === 'lua' && name === 'HSET' && rest[1] === 'succeeded',
      );
      assert.ok(stored >= 0 && about.indexOf(running[1] as string[]) === stored + 2, JSON.stringify(about));
    }
    // Its caller waited here, where it ran, and no other gateway watched it: its events went to
    // no other gateway (a pattern subscription sent them to every gateway, this one included).
    const published = seen.filter(([, name]) => name?.toLowerCase() === 'publish');
    assert.deepEqual(published, []);
    assert.equal((now.exec ?? 0) - (before.exec ?? 0), 0, 'no transaction');
    assert.equal(await client.hlen(`${prefix}:running`), 0);
  });

  test('a job that has to wait goes through the queue: admission and entry in one transaction, never read back, entry completed after the terminal state is stored', async () => {
    // One slot: the gateway keeps it for queue entries, so every job takes the queue.
    const [g] = await gateway('queued', { MAX_JOBS_PER_INSTANCE: '1' });
    await run(g, 'warm');
    const before = await commandCalls(client);
    const jobs = 5;
    const ids: string[] = [];
    const seen = await monitored(async () => {
      for (let i = 0; i < jobs; i++) ids.push(await run(g, `j${i}`));
    });
    const now = await commandCalls(client);
    // The record with its workflow is read only by a gateway that did not admit the job.
    assert.deepEqual(
      seen.filter(
        ([source, name, key]) =>
          source === 'client' && name?.toLowerCase() === 'hmget' && key?.includes(':job:'),
      ),
      [],
    );
    assert.equal((now.exec ?? 0) - (before.exec ?? 0), jobs, 'one MULTI per submission');
    // Per job, in Redis's order: its terminal state written, its queue entry completed. A gateway
    // killed between the two must not leave a record that never ends without an entry.
    const order: string[] = [];
    for (const [source, name, key, ...rest] of seen) {
      if (source !== 'lua') continue;
      if (name === 'HSET' && key?.includes(':job:') && rest[1] === 'succeeded')
        order.push(`stored ${key.slice(key.lastIndexOf(':') + 1)}`);
      if (name === 'LREM' && key?.endsWith(':active')) order.push(`completed ${rest[1]}`);
    }
    // The warm-up job's entry may be completed after MONITOR started (its end was stored before).
    const completed = order.filter((o) => ids.some((id) => o === `completed ${id}`));
    assert.equal(completed.length, jobs, JSON.stringify(order));
    for (const c of completed) {
      const id = c.slice('completed '.length);
      assert.ok(
        order.indexOf(`stored ${id}`) >= 0 && order.indexOf(`stored ${id}`) < order.indexOf(c),
        JSON.stringify(order),
      );
    }
  });
  test('a job another gateway runs ends at the admitting gateway with the record its terminal event carried, not read back', async () => {
    // One instance: the gateway started first leases it, the other runs nothing itself. Nodes
    // take 30 ms, so the job never ends before the admitting gateway watches it (a job that did
    // is read back once, by design).
    const slow = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 30 });
    const pair: Gateway[] = [];
    try {
      const env = { COMFYUI_URLS: slow.instances.map((s) => s.url).join(',') };
      const [runner, prefix] = await gateway('runner', env);
      const [admitter] = await gateway('admitter', env, prefix);
      pair.push(runner, admitter);
      assert.equal(runner.manager instanceof FleetJobManager && runner.manager.leasedInstances.size, 1);
      assert.equal(admitter.manager instanceof FleetJobManager && admitter.manager.leasedInstances.size, 0);
      const admitterId = (admitter.manager as FleetJobManager).gatewayId;
      await run(admitter, 'warm');
      const ids: string[] = [];
      const seen = await monitored(async () => {
        for (let i = 0; i < 3; i++) ids.push(await run(admitter, `far${i}`));
      });
      const ran = (slow.instances[0]?.stats.promptsExecuted ?? 0) > 3;
      assert.ok(ran, 'the jobs ran on the runner');
      for (const id of ids) {
        const reads = seen.filter(
          ([source, name, key]) =>
            source === 'client' && name?.toLowerCase() === 'hmget' && key?.endsWith(`:job:${id}`),
        );
        // The runner reads the record it takes (with the cancel flag); the admitter never.
        assert.deepEqual(
          reads.map(([, , , ...fields]) => fields.join(',')),
          ['d,w,c'],
          JSON.stringify(reads),
        );
        // The runner's terminal event carried the record instead, published (by the script that
        // saved the end) to the admitter's inbox only: the runner does not hear its own events.
        const published = seen.filter(
          ([source, name, , message]) =>
            source === 'lua' && name?.toLowerCase() === 'publish' && message?.startsWith(id),
        );
        assert.ok(published.length >= 1, JSON.stringify(published));
        const inboxes = new Set(published.map(([, , channel]) => channel));
        assert.deepEqual([...inboxes], [`${prefix}:in:${admitterId}`]);
        const carried = published.filter(([, , , message]) => message?.includes('"r":{'));
        assert.equal(carried.length, 1, JSON.stringify(carried));
      }
    } finally {
      for (const g of pair) await g.close();
      await slow.close();
    }
  });
  test('the admissions of one turn share one transaction; a key repeated within it makes one job', async () => {
    // The gateway started first leases the one instance: the other queues everything it admits.
    const [runner, prefix] = await gateway('batch-runner');
    const [admitter] = await gateway('batch-admitter', {}, prefix);
    const manager = admitter.manager as FleetJobManager;
    assert.equal(manager.leasedInstances.size, 0);
    assert.equal((runner.manager as FleetJobManager).leasedInstances.size, 1);
    const executedBefore = sim.instances[0]?.stats.promptsExecuted ?? 0;
    const before = await commandCalls(client);
    const created = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        manager.create({ workflow: invertPrompt(`batch${i}`), idempotencyKey: i < 2 ? 'same' : `key${i}` }),
      ),
    );
    const now = await commandCalls(client);
    assert.equal((now.exec ?? 0) - (before.exec ?? 0), 1, 'one transaction for all eight');
    const refused = created.filter((r) => r.status === 'rejected');
    assert.equal(refused.length, 1);
    assert.ok((refused[0] as PromiseRejectedResult).reason instanceof IdempotencyKeyReuseError);
    const jobs = created.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    assert.equal(jobs.length, 7);
    for (const job of jobs) {
      const ended = await manager.waitForTerminal(job.id, AbortSignal.timeout(15_000));
      assert.equal(ended.status, 'succeeded', job.id);
    }
    // Seven prompts ran: the refused submission never reached the queue.
    assert.equal((sim.instances[0]?.stats.promptsExecuted ?? 0) - executedBefore, 7);
  });
  test('once a burst drained the queue, the next job that can start at once skips it (without waiting for the once-a-second count)', async () => {
    // One instance with 30 ms nodes: 40 jobs keep entries waiting for about two seconds, so the
    // gateway's periodic count sees them.
    const slow = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 30 });
    try {
      const [g, prefix] = await gateway('drain', {
        COMFYUI_URLS: slow.instances.map((s) => s.url).join(','),
      });
      const manager = g.manager as FleetJobManager;
      const burst = await Promise.all(
        Array.from({ length: 40 }, (_, i) => manager.create({ workflow: invertPrompt(`burst${i}`) })),
      );
      // Submitted in one turn, they did not all take the one free slot: one runs here at once
      // (the worker keeps the other slot for entries), the rest wait in the fleet's queue.
      assert.ok((await client.zcard(`${prefix}:bull:jobs:prioritized`)) >= 30);
      for (const job of burst)
        assert.equal(
          (await manager.waitForTerminal(job.id, AbortSignal.timeout(30_000))).status,
          'succeeded',
        );
      const before = await commandCalls(client);
      await run(g, 'after-burst');
      const now = await commandCalls(client);
      assert.equal((now.exec ?? 0) - (before.exec ?? 0), 0, 'no queue entry for the job after the burst');
    } finally {
      await slow.close();
    }
  });
});
