// What issue 13 promises every mode, in a fleet on the shared Redis (a key prefix per test): a
// caller that waits gets 503 no_instance_available at once when no instance can run its workflow,
// /prompt_sync's timeout bounds a job wherever it waits (the fleet's queue, or a gateway that took
// it too late), and the webhook outbox outlives the gateway that was delivering: another gateway
// resumes a pending delivery.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import type { FleetJobManager } from '../../src/fleet/index.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { deletePrefix, freePort, REDIS_URL, redisUnavailable, testPrefix } from '../support/fleet.ts';
import { invertPrompt, type Json } from '../support/gateway.ts';

const unavailable = await redisUnavailable();

describe('fleet parity with single mode', { skip: unavailable || false }, () => {
  let sim: Simulator;
  let dir: string;
  const prefixes: string[] = [];
  const open: Gateway[] = [];
  const servers: Server[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-fleet-parity-'));
    sim = await startSimulator({ port: 0, instances: 2, nodeDelayMs: 0 });
  });

  afterEach(async () => {
    for (const g of open.splice(0)) await g.close();
    for (const instance of sim.instances) instance.clearFaults();
  });

  after(async () => {
    await sim?.close();
    for (const s of servers) s.close();
    for (const prefix of prefixes) await deletePrefix(REDIS_URL, prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A new fleet prefix. */
  function newPrefix(name: string): string {
    const prefix = testPrefix(name);
    prefixes.push(prefix);
    return prefix;
  }

  /** One gateway of the fleet under `prefix`. */
  async function gateway(prefix: string, name: string, env: Record<string, string> = {}): Promise<Gateway> {
    const config = loadConfig({
      COMFYUI_URLS: sim.instances.map((s) => s.url).join(','),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      INSTANCE_LEASE_MS: '2000',
      HEALTH_CHECK_INTERVAL_MS: '1000',
      SHUTDOWN_GRACE_MS: '300',
      DATA_DIR: join(dir, name),
      STORAGE_URL: `file://${join(dir, 'storage')}`,
      ...env,
    });
    const g = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
    open.push(g);
    return g;
  }

  async function call(g: Gateway, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const res = await fetch(g.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  }

  /** Fills both instances' only slot with prompts that never start; returns their job ids. */
  async function fillSlots(g: Gateway, observer: Gateway = g): Promise<string[]> {
    for (const instance of sim.instances) instance.setFaults({ neverStart: true });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++)
      ids.push((await call(g, '/api/v2/jobs', { workflow: invertPrompt(`block${i}`) })).body.id);
    await until(async () => {
      const jobs = await Promise.all(ids.map((id) => call(observer, `/api/v2/jobs/${id}`)));
      return jobs.every((j) => j.body.instance_id !== null);
    }, 'both slots taken');
    return ids;
  }

  /** Whether any instance saw a prompt with this id. */
  async function ran(id: string): Promise<boolean> {
    for (const instance of sim.instances) {
      const history = (await (await fetch(`${instance.url}/history/${id}`)).json()) as Record<
        string,
        unknown
      >;
      if (history[id]) return true;
    }
    return false;
  }

  test('a caller that waits gets 503 no_instance_available at once when no instance can run it', async () => {
    const port = await freePort();
    const g = await gateway(newPrefix('noinst'), 'noinst', {
      COMFYUI_URLS: `http://127.0.0.1:${port}`,
    });
    const started = Date.now();
    const waited = await call(g, '/api/v2/jobs?wait=10', { workflow: invertPrompt('w') });
    assert.equal(waited.status, 503, JSON.stringify(waited.body));
    assert.equal(waited.body.error.code, 'no_instance_available');
    const sync = await call(g, '/prompt_sync', { prompt: invertPrompt('s'), timeout: 10 });
    assert.equal(sync.status, 503, JSON.stringify(sync.body));
    assert.equal(sync.body.error, 'no_instance_available');
    assert.ok(Date.now() - started < 3000, 'answered at once, not at the timeout');
    // Nothing was queued for them; an asynchronous submission still is.
    assert.equal((await call(g, '/api/v2/jobs')).body.jobs.length, 0);
    const queued = await call(g, '/api/v2/jobs', { workflow: invertPrompt('a') });
    assert.equal(queued.status, 201);
    assert.equal(queued.body.status, 'queued');
  });

  test('/prompt_sync’s timeout ends a job still waiting in the fleet’s queue: failed timeout, never run', async () => {
    const g = await gateway(newPrefix('deadline'), 'deadline', { MAX_JOBS_PER_INSTANCE: '1' });
    const blockers = await fillSlots(g);
    const started = Date.now();
    const sync = await call(g, '/prompt_sync', { prompt: invertPrompt('late'), timeout: 1 });
    assert.equal(sync.status, 504, JSON.stringify(sync.body));
    assert.equal(sync.body.error, 'timeout');
    assert.ok(
      Date.now() - started < 2900,
      `answered at the deadline, not after the margin: ${Date.now() - started} ms`,
    );
    const id = sync.body.prompt_id as string;
    const job = (await call(g, `/api/v2/jobs/${id}`)).body;
    assert.equal(job.status, 'failed');
    assert.equal(job.error.code, 'timeout');
    assert.deepEqual(job.attempts, []);
    // Slots come free: the expired job stays failed and never reaches an instance.
    for (const instance of sim.instances) instance.clearFaults();
    for (const blocker of blockers) await call(g, `/api/v2/jobs/${blocker}/cancel`, {});
    const after = (await call(g, '/api/v2/jobs', { workflow: invertPrompt('after') })).body.id as string;
    await until(
      async () => (await call(g, `/api/v2/jobs/${after}`)).body.status === 'succeeded',
      'a later job ran',
    );
    assert.equal((await call(g, `/api/v2/jobs/${id}`)).body.status, 'failed');
    assert.equal(await ran(id), false);
  });

  test('a gateway that takes a /prompt_sync job after its deadline fails it without running it', async () => {
    const prefix = newPrefix('adopt');
    const a = await gateway(prefix, 'adopt-a', { MAX_JOBS_PER_INSTANCE: '1' });
    const b = await gateway(prefix, 'adopt-b', { MAX_JOBS_PER_INSTANCE: '1' });
    const blockers = await fillSlots(a, b);
    const sync = call(a, '/prompt_sync', { prompt: invertPrompt('handed'), timeout: 1 });
    // A stops before the deadline: its caller is answered, the job stays in the fleet's queue.
    await new Promise((r) => setTimeout(r, 300));
    await a.close();
    const answer = await sync;
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    const id = answer.body.prompt_id as string;
    await new Promise((r) => setTimeout(r, 1200));
    // Now B gets a slot and takes the entry, past its deadline.
    for (const instance of sim.instances) instance.clearFaults();
    for (const blocker of blockers) await call(b, `/api/v2/jobs/${blocker}/cancel`, {});
    await until(async () => (await call(b, `/api/v2/jobs/${id}`)).body.status === 'failed', 'the job failed');
    const job = (await call(b, `/api/v2/jobs/${id}`)).body;
    assert.equal(job.error.code, 'timeout');
    assert.deepEqual(job.attempts, []);
    assert.equal(await ran(id), false);
  });

  test('a webhook delivery left pending by a gateway that stopped is resumed by another', async () => {
    let accept = false;
    const hits: Array<{ id: string; type: string; job: string }> = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        hits.push({ id: String(req.headers['webhook-id']), type: body.type, job: body.data.id });
        res.writeHead(accept ? 200 : 503).end();
      });
    });
    servers.push(receiver);
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const prefix = newPrefix('outbox');
    const env = { ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1' };
    const a = await gateway(prefix, 'outbox-a', env);
    const created = await call(a, '/api/v2/jobs?wait=10', {
      workflow: invertPrompt('hook'),
      webhook_url: hook,
    });
    assert.equal(created.body.status, 'succeeded');
    const id = created.body.id as string;
    await until(async () => hits.length > 0, 'the first attempt');
    const pending = (await call(a, `/api/v2/jobs/${id}`)).body;
    assert.equal(pending.webhooks[0].status, 'pending', JSON.stringify(pending.webhooks));
    const redis = new Redis(REDIS_URL);
    try {
      assert.equal(await redis.hget(`${prefix}:hooks`, id), (a.manager as FleetJobManager).gatewayId);
      await a.close();

      accept = true;
      const b = await gateway(prefix, 'outbox-b', env);
      await until(
        async () => (await call(b, `/api/v2/jobs/${id}`)).body.webhooks?.[0]?.status === 'delivered',
        'delivered by B',
      );
      const delivered = hits.filter((h) => h.job === id);
      assert.ok(delivered.length >= 2, JSON.stringify(delivered));
      assert.ok(
        delivered.every((h) => h.id === delivered[0]?.id && h.type === 'job.succeeded'),
        'one webhook-id throughout',
      );
      const job = (await call(b, `/api/v2/jobs/${id}`)).body;
      assert.equal(job.webhooks[0].attempts.at(-1).status_code, 200);
      assert.equal(await redis.hlen(`${prefix}:hooks`), 0, 'the outbox is empty again');
    } finally {
      redis.disconnect();
    }
  });
});

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
