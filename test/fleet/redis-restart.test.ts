// Redis restarted under a running fleet: a redis-server of the test's own (never the shared one),
// with AOF so acknowledged writes survive its SIGKILL. While it is down a submission answers
// 503 store_unavailable; when it is back every job submitted before ends succeeded, exactly once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { type PrivateRedis, redisUnavailable, startPrivateRedis, testPrefix } from '../support/fleet.ts';
import { invertPrompt, type Json, readEvents } from '../support/gateway.ts';

const unavailable = await redisUnavailable();

describe('fleet across a Redis restart', { skip: unavailable || false }, () => {
  let sim: Simulator;
  let redis: PrivateRedis;
  let dir: string;
  const gateways: Gateway[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-fleet-redis-'));
    redis = await startPrivateRedis(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]);
    sim = await startSimulator({ port: 0, instances: 2, nodeDelayMs: 5 });
    const prefix = testPrefix('restart');
    for (let i = 0; i < 2; i++)
      gateways.push(
        await fleetGateway(sim, redis.url, prefix, join(dir, `gw${i}`), {
          INSTANCE_LEASE_MS: '4000',
          HEALTH_CHECK_INTERVAL_MS: '1000',
        }),
      );
  });

  after(async () => {
    for (const g of gateways) await g.close();
    await sim?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function post(g: Gateway, body: unknown): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${g.url}/api/v2/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  test('jobs submitted before a Redis SIGKILL + restart all succeed exactly once; submissions meanwhile get 503', async () => {
    const N = 200;
    const executed = () => sim.instances.reduce((n, i) => n + i.stats.promptsExecuted, 0);
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const { status, body } = await post(gateways[i % 2] as Gateway, { workflow: invertPrompt(`rr${i}`) });
      assert.equal(status, 201, JSON.stringify(body));
      ids.push(body.id);
    }
    await until(() => executed() >= 40, 20_000, '40 jobs ran');
    await redis.stop();
    const refused = await post(gateways[1] as Gateway, { workflow: invertPrompt('while-down') });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'store_unavailable');
    await redis.start();
    await until(() => executed() >= N, 60_000, `all ${N} prompts ran (now ${executed()})`);
    const g = gateways[0] as Gateway;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const jobs = await Promise.all(
        ids.map(async (id) => (await (await fetch(`${g.url}/api/v2/jobs/${id}`)).json()) as Json),
      );
      const open = jobs.filter((j) => j.status !== 'succeeded');
      if (open.length === 0) break;
      assert.ok(Date.now() < deadline, `${open.length} jobs not succeeded: ${JSON.stringify(open[0])}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(executed(), N, 'no prompt ran twice');
  });
});

describe('a stream at one gateway of a job another runs, across a Redis restart that lost everything', {
  skip: unavailable || false,
}, () => {
  test('the stream hears the job end: the watch is made again and the record written again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-fleet-redis-'));
    // No persistence: the restarted Redis has no record, no queue and no list of who watches.
    const redis = await startPrivateRedis(['--appendonly', 'no']);
    // One instance, leased by the gateway started first: the other runs nothing. Five nodes of
    // 400 ms: the job is still running when Redis is back.
    const sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 400 });
    const prefix = testPrefix('rewatch');
    const pair: Gateway[] = [];
    try {
      for (const name of ['runner', 'watcher'])
        pair.push(
          await fleetGateway(sim, redis.url, prefix, join(dir, name), { INSTANCE_LEASE_MS: '20000' }),
        );
      const [runner, watcher] = pair as [Gateway, Gateway];
      const res = await fetch(`${watcher.url}/api/v2/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: invertPrompt('rewatch') }),
      });
      const { id } = (await res.json()) as Json;
      assert.equal(res.status, 201);
      const statuses: string[] = [];
      let restarted = false;
      for await (const frame of readEvents(
        `${watcher.url}/api/v2/jobs/${id}/events`,
        AbortSignal.timeout(30_000),
      )) {
        if (frame.event !== 'status') continue;
        statuses.push(frame.data.status);
        if (frame.data.status === 'running' && !restarted) {
          restarted = true;
          await redis.restart();
        }
      }
      assert.ok(restarted, `the job was seen running before the restart: ${statuses.join(',')}`);
      assert.equal(statuses.at(-1), 'succeeded', statuses.join(','));
      // The record was written again by its runner, with its end.
      for (const g of [runner, watcher]) {
        const job = (await (await fetch(`${g.url}/api/v2/jobs/${id}`)).json()) as Json;
        assert.equal(job.status, 'succeeded');
      }
      assert.equal(sim.instances[0]?.stats.promptsExecuted, 1);
    } finally {
      for (const g of pair) await g.close();
      await sim.close();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A gateway in fleet mode on `redisUrl` under `prefix`, in front of every instance of `sim`; `env` adds settings. */
async function fleetGateway(
  sim: Simulator,
  redisUrl: string,
  prefix: string,
  dataDir: string,
  env: Record<string, string>,
): Promise<Gateway> {
  const config = loadConfig({
    COMFYUI_URLS: sim.instances.map((s) => s.url).join(','),
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    SHUTDOWN_GRACE_MS: '1000',
    DATA_DIR: dataDir,
    STORAGE_URL: `file://${join(dataDir, '..', 'storage')}`,
    ...env,
  });
  return startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
