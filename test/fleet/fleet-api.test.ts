// Fleet mode through the HTTP API with two in-process gateways on the shared Redis (a key prefix
// per test): cancels reach jobs another gateway holds, MAX_QUEUE, priorities and queue positions
// hold fleet-wide, listing pages across the fleet, a graceful stop hands work over at once, and an unreachable
// Redis stops start-up with a message naming REDIS_URL.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
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
import { invertPrompt, type Json, readEvents } from '../support/gateway.ts';

const unavailable = await redisUnavailable();

describe('fleet API across gateways', { skip: unavailable || false }, () => {
  let sim: Simulator;
  let dir: string;
  const prefixes: string[] = [];
  const open: Gateway[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-fleet-api-'));
    sim = await startSimulator({ port: 0, instances: 2, nodeDelayMs: 0 });
  });

  // Each test's gateways stop when it ends: fleets of earlier tests must not drive the instances.
  afterEach(async () => {
    for (const g of open.splice(0)) await g.close();
  });

  after(async () => {
    await sim?.close();
    for (const prefix of prefixes) await deletePrefix(REDIS_URL, prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Two gateways sharing a fresh prefix; `env` overrides settings. */
  async function fleet(name: string, env: Record<string, string> = {}, count = 2): Promise<Gateway[]> {
    const prefix = testPrefix(name);
    prefixes.push(prefix);
    const out: Gateway[] = [];
    for (let i = 0; i < count; i++) {
      const config = loadConfig({
        COMFYUI_URLS: sim.instances.map((s) => s.url).join(','),
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        INSTANCE_LEASE_MS: '2000',
        HEALTH_CHECK_INTERVAL_MS: '1000',
        SHUTDOWN_GRACE_MS: '1000',
        DATA_DIR: join(dir, `${name}-${i}`),
        STORAGE_URL: `file://${join(dir, 'storage')}`,
        ...env,
      });
      const g = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
        logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      });
      open.push(g);
      out.push(g);
    }
    return out;
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

  /** From now on the instances hold prompts without starting them (until park(false)). */
  const park = (on: boolean) => {
    for (const instance of sim.instances) {
      if (on) instance.setFaults({ neverStart: true });
      else instance.clearFaults();
    }
  };
  const parked = (tag: string) => ({ workflow: invertPrompt(tag) });

  /**
   * Parks the instances until the test ends and fills `count` slots with prompts submitted at `a`
   * (they never start), once `b` sees each on an instance.
   */
  async function fillSlots(
    t: { after: (fn: () => void) => void },
    [a, b]: [Gateway, Gateway],
    count: number,
    tag: string,
  ): Promise<Json[]> {
    park(true);
    t.after(() => park(false));
    const blockers: Json[] = [];
    for (let i = 0; i < count; i++) blockers.push((await call(a, '/api/v2/jobs', parked(`${tag}${i}`))).body);
    await until(async () => {
      const jobs = await Promise.all(blockers.map((j) => call(b, `/api/v2/jobs/${j.id}`)));
      return jobs.every((j) => j.body.instance_id !== null);
    }, `${count} slots taken`);
    return blockers;
  }

  test('a cancel at B ends a job A is holding on its instance, and one still waiting in the queue', async (t) => {
    const [a, b] = (await fleet('cancel', { MAX_JOBS_PER_INSTANCE: '1' })) as [Gateway, Gateway];
    park(true);
    t.after(() => park(false));
    // Two slots in the fleet: two parked prompts fill them, the third waits in the shared queue.
    const held: Json[] = [];
    for (let i = 0; i < 3; i++) held.push((await call(a, '/api/v2/jobs', parked(`c${i}`))).body);
    await until(async () => {
      const jobs = await Promise.all(held.slice(0, 2).map((j) => call(b, `/api/v2/jobs/${j.id}`)));
      return jobs.every((j) => j.body.instance_id !== null);
    }, 'the first two jobs reached an instance');
    const waiting = held[2];
    const canceledWaiting = await call(b, `/api/v2/jobs/${waiting.id}/cancel`, {});
    assert.equal(canceledWaiting.status, 200);
    assert.equal(canceledWaiting.body.status, 'canceled');
    for (const job of held.slice(0, 2)) {
      const r = await call(b, `/api/v2/jobs/${job.id}/cancel`, {});
      assert.equal(r.status, 200);
      assert.ok(['canceling', 'canceled'].includes(r.body.status), r.body.status);
    }
    await until(async () => {
      const jobs = await Promise.all(held.map((j) => call(a, `/api/v2/jobs/${j.id}`)));
      return jobs.every((j) => j.body.status === 'canceled');
    }, 'all three canceled');
  });

  test('MAX_QUEUE bounds waiting jobs fleet-wide; higher priority runs first', async (t) => {
    const [a, b] = (await fleet('queue', { MAX_QUEUE: '3', MAX_JOBS_PER_INSTANCE: '1' })) as [
      Gateway,
      Gateway,
    ];
    const blockers = await fillSlots(t, [a, b], 2, 'b');
    const low = await call(a, '/api/v2/jobs', { workflow: invertPrompt('low'), priority: 0 });
    const mid = await call(b, '/api/v2/jobs', { workflow: invertPrompt('mid'), priority: 5 });
    const high = await call(a, '/api/v2/jobs', { workflow: invertPrompt('high'), priority: 10 });
    assert.deepEqual([low.status, mid.status, high.status], [201, 201, 201]);
    const full = await call(b, '/api/v2/jobs', { workflow: invertPrompt('over') });
    assert.equal(full.status, 429, JSON.stringify(full.body));
    assert.equal(full.body.error.code, 'queue_full');
    // The refused job's entry was never queued (its add ran in the admission's transaction).
    const redis = new Redis(REDIS_URL);
    try {
      const bull = `${prefixes.at(-1)}:bull:jobs`;
      const [waiting, prioritized] = await Promise.all([
        redis.llen(`${bull}:wait`),
        redis.zcard(`${bull}:prioritized`),
      ]);
      assert.equal(waiting + prioritized, 3);
    } finally {
      redis.disconnect();
    }
    // Still parked: the two slots the blockers free go to high and mid, and stay taken, so low,
    // submitted first, waits. (With the instances running, the gateway that finished first took
    // low while the other was still finishing its blocker: "low started last" failed under load.)
    for (const j of blockers) await call(b, `/api/v2/jobs/${j.id}/cancel`, {});
    await until(async () => {
      const jobs = await Promise.all([high, mid].map((j) => call(a, `/api/v2/jobs/${j.body.id}`)));
      return jobs.every((j) => j.body.instance_id !== null);
    }, 'high and mid took the freed slots');
    const lowNow = (await call(b, `/api/v2/jobs/${low.body.id}`)).body;
    assert.deepEqual([lowNow.status, lowNow.instance_id], ['queued', null]);
    park(false);
    await until(async () => {
      const jobs = await Promise.all([low, mid, high].map((j) => call(a, `/api/v2/jobs/${j.body.id}`)));
      return jobs.every((j) => j.body.status === 'succeeded');
    }, 'the waiting jobs ran');
  });

  test('queue_position is the place in the fleet’s queue at either gateway: GET, list, 201 and SSE', async (t) => {
    const [a, b] = (await fleet('position', { MAX_JOBS_PER_INSTANCE: '1' })) as [Gateway, Gateway];
    const blockers = await fillSlots(t, [a, b], 2, 'p');
    for (const j of blockers) assert.equal((await call(a, `/api/v2/jobs/${j.id}`)).body.queue_position, null);
    const low = await call(a, '/api/v2/jobs', { workflow: invertPrompt('plow'), priority: 0 });
    assert.equal(low.body.queue_position, 1, 'the first to wait');
    const mid = await call(b, '/api/v2/jobs', { workflow: invertPrompt('pmid'), priority: 5 });
    assert.equal(mid.body.queue_position, 1, 'ahead of low');
    const high = await call(a, '/api/v2/jobs', { workflow: invertPrompt('phigh'), priority: 10 });
    assert.equal(high.body.queue_position, 1, 'ahead of both');
    const expected = new Map([
      [high.body.id, 1],
      [mid.body.id, 2],
      [low.body.id, 3],
    ]);
    for (const g of [a, b])
      for (const [id, position] of expected) {
        const job = (await call(g, `/api/v2/jobs/${id}`)).body;
        assert.deepEqual([job.status, job.queue_position], ['queued', position], `${id} at ${g.url}`);
      }
    const listed = (await call(b, '/api/v2/jobs?status=queued&limit=10')).body.jobs as Json[];
    // The blockers are listed too: queued (their prompts never start), but on an instance.
    const byPlace = (x: [string, number | null], y: [string, number | null]) =>
      (x[1] ?? 0) - (y[1] ?? 0) || x[0].localeCompare(y[0]);
    assert.deepEqual(
      listed.map((j): [string, number | null] => [j.id, j.queue_position]).sort(byPlace),
      [...blockers.map((j): [string, number | null] => [j.id, null]), ...expected].sort(byPlace),
    );
    // A stream at B of low (admitted at A) starts at its place and hears it move up.
    const frames: Json[] = [];
    const stream = (async () => {
      for await (const frame of readEvents(
        `${b.url}/api/v2/jobs/${low.body.id}/events`,
        AbortSignal.timeout(15_000),
      )) {
        if (frame.event !== 'status') continue;
        frames.push(frame.data);
        if (frame.data.queue_position === 2) return;
      }
    })();
    await until(async () => frames.length > 0, 'the stream’s first status');
    assert.deepEqual(frames[0], { status: 'queued', queue_position: 3 });
    assert.equal((await call(b, `/api/v2/jobs/${high.body.id}/cancel`, {})).body.status, 'canceled');
    await stream;
    assert.deepEqual(frames.at(-1), { status: 'queued', queue_position: 2 });
    assert.equal((await call(a, `/api/v2/jobs/${low.body.id}`)).body.queue_position, 2);
  });

  test('the listing pages through every gateway’s jobs with a cursor', async () => {
    const [a, b] = (await fleet('list')) as [Gateway, Gateway];
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++)
      ids.add(
        (await call(i % 2 ? a : b, '/api/v2/jobs?wait=10', { workflow: invertPrompt(`l${i}`) })).body.id,
      );
    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const r = await call(a, `/api/v2/jobs?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200);
      seen.push(...r.body.jobs.map((j: Json) => j.id));
      if (!r.body.has_more) break;
      cursor = r.body.next_cursor;
    }
    assert.deepEqual(new Set(seen), ids);
    assert.equal(seen.length, ids.size, 'no job twice');
    const succeeded = await call(b, '/api/v2/jobs?status=succeeded&limit=100');
    assert.equal(succeeded.body.jobs.length, 7);
  });

  test('a gateway that stops gracefully hands its jobs over at once; the other finishes them', async (t) => {
    const [a, b] = (await fleet('handover', { INSTANCE_LEASE_MS: '60000' })) as [Gateway, Gateway];
    // Slow nodes, so A still holds running and waiting jobs when it stops.
    for (const instance of sim.instances) instance.setFaults({ nodeDelayMs: 20 });
    t.after(() => park(false));
    const ids: string[] = [];
    for (let i = 0; i < 40; i++)
      ids.push((await call(i % 2 ? a : b, '/api/v2/jobs', { workflow: invertPrompt(`h${i}`) })).body.id);
    const closed = Date.now();
    await a.close();
    // The lease bound is a minute: only a hand-over (not expiry) finishes them this fast.
    await until(async () => {
      const jobs = await Promise.all(ids.map((id) => call(b, `/api/v2/jobs/${id}`)));
      return jobs.every((j) => j.body.status === 'succeeded');
    }, 'all 40 succeeded at B');
    assert.ok(Date.now() - closed < 30_000);
  });

  test('an entry that comes back to the gateway running its job is held until the job ends, not completed', async (t) => {
    // A stall longer than the lock lets BullMQ hand the entry out again, possibly to the same
    // gateway: completing that delivery at once dropped the entry of a job still running.
    const [a] = (await fleet('again', {}, 1)) as [Gateway];
    park(true);
    t.after(() => park(false));
    const { id } = (await call(a, '/api/v2/jobs', parked('again'))).body;
    await until(async () => (await call(a, `/api/v2/jobs/${id}`)).body.instance_id !== null, 'dispatched');
    const again = (a.manager as FleetJobManager).take({ id, extraData: undefined, retaken: true });
    const early = await Promise.race([again, new Promise((r) => setTimeout(() => r('pending'), 300))]);
    assert.equal(early, 'pending');
    await call(a, `/api/v2/jobs/${id}/cancel`, {});
    assert.equal(await again, 'done');
  });

  test('an unreachable REDIS_URL stops start-up with a message naming it', async () => {
    const port = await freePort();
    const config = loadConfig({
      COMFYUI_URLS: sim.instances[0]?.url ?? '',
      REDIS_URL: `redis://:secret@127.0.0.1:${port}`,
      DATA_DIR: join(dir, 'unreachable'),
    });
    await assert.rejects(
      startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
        logger: pino({ level: 'silent' }),
      }),
      (err: Error) =>
        err.message.startsWith('REDIS_URL: cannot reach Redis') && !err.message.includes('secret'),
    );
  });
});

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
