// Pool routing and lifecycle against simulated ComfyUI instances on loopback: least-loaded with
// round-robin ties, weights, slots, exclusion, capability filtering, affinity, drain, add, close.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { type Lease, Pool } from '../../src/pool/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { FAST_POOL, tinyPrompt, waitFor } from './helpers.ts';

let sim: Simulator;
before(async () => {
  sim = await startSimulator({ port: 0, instances: 3 });
});
after(() => sim.close());

async function startPool(
  t: { after: (fn: () => Promise<void>) => void },
  overrides: Partial<ConstructorParameters<typeof Pool>[0]> = {},
): Promise<Pool> {
  const pool = new Pool({
    ...FAST_POOL,
    instances: sim.instances.map((s, i) => ({ id: `sim-${i}`, url: s.url })),
    ...overrides,
  });
  t.after(() => pool.close());
  await pool.start();
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000, 'all healthy');
  // Capabilities load right after the first check; this joins that load.
  await Promise.all(pool.list().map((s) => pool.nodeDefsFor(s.id)));
  return pool;
}

const CLASSES = ['EmptyImage', 'SaveImage'];

test('start() reports every instance healthy with its capabilities', async (t) => {
  const pool = await startPool(t);
  const list = pool.list();
  assert.deepEqual(
    list.map((s) => [s.id, s.state, s.breaker, s.running, s.queued]),
    [
      ['sim-0', 'healthy', 'closed', 0, 0],
      ['sim-1', 'healthy', 'closed', 0, 0],
      ['sim-2', 'healthy', 'closed', 0, 0],
    ],
  );
  assert.ok(pool.isStarted());
  for (const s of list) {
    assert.ok(s.lastCheckAt !== null && !Number.isNaN(Date.parse(s.lastCheckAt)));
    assert.ok(typeof s.latencyMs === 'number' && s.latencyMs >= 0);
  }
  const defs = await pool.nodeDefsFor('sim-1');
  assert.ok(defs.SaveImage, 'object_info has SaveImage');
});

test('spreads leases least-loaded with round-robin ties and respects slots', async (t) => {
  const pool = await startPool(t, { maxJobsPerInstance: 2 });
  const leases: Lease[] = [];
  for (let i = 0; i < 6; i++) {
    const lease = pool.tryAcquire({ classTypes: CLASSES });
    assert.ok(lease, `lease ${i}`);
    leases.push(lease);
  }
  assert.deepEqual(
    leases.map((l) => l.instanceId),
    ['sim-0', 'sim-1', 'sim-2', 'sim-0', 'sim-1', 'sim-2'],
  );
  assert.equal(pool.tryAcquire({ classTypes: CLASSES }), null, 'every slot is taken');
  assert.deepEqual(
    pool.list().map((s) => s.queued),
    [2, 2, 2],
  );
  leases[1]!.markStarted();
  assert.deepEqual([pool.get('sim-1')!.running, pool.get('sim-1')!.queued], [1, 1]);
  const capacity = once(pool, 'capacity');
  leases[4]!.release({ ok: true });
  leases[4]!.release({ ok: true }); // idempotent
  await capacity;
  const next = pool.tryAcquire({ classTypes: CLASSES });
  assert.equal(next?.instanceId, 'sim-1');
  for (const lease of [...leases, next!]) lease.release({ ok: true });
  assert.deepEqual(
    pool.list().map((s) => s.running + s.queued),
    [0, 0, 0],
  );
});

test('weights share work in proportion and exclude skips instances', async (t) => {
  const pool = new Pool({
    ...FAST_POOL,
    maxJobsPerInstance: 10,
    instances: [
      { id: 'big', url: sim.instances[0]!.url, weight: 3 },
      { id: 'small', url: sim.instances[1]!.url, weight: 1 },
    ],
  });
  t.after(() => pool.close());
  await pool.start();
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000);
  const counts: Record<string, number> = { big: 0, small: 0 };
  for (let i = 0; i < 8; i++) counts[pool.tryAcquire({ classTypes: [] })!.instanceId]!++;
  assert.deepEqual(counts, { big: 6, small: 2 });
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['big'] })?.instanceId, 'small');
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['big', 'small'] }), null);
});

test('only instances with every node class are eligible; canEverRun names what is missing', async (t) => {
  const pool = await startPool(t);
  assert.deepEqual(pool.canEverRun(['SaveImage', 'NoSuchNode', 'AlsoMissing', 'NoSuchNode']), {
    ok: false,
    missing: ['AlsoMissing', 'NoSuchNode'],
  });
  assert.equal(pool.tryAcquire({ classTypes: ['SaveImage', 'NoSuchNode'] }), null);
  assert.ok(pool.tryAcquire({ classTypes: ['SaveImage'] }));
});

test('affinity prefers the instance that last ran the same models', async (t) => {
  const pool = await startPool(t);
  const models = ['sdxl.safetensors', 'detail-lora.safetensors'];
  const first = pool.tryAcquire({ classTypes: CLASSES, models })!;
  first.release({ ok: true });
  // Round-robin alone would move on to the next instance.
  const second = pool.tryAcquire({ classTypes: CLASSES, models })!;
  assert.equal(second.instanceId, first.instanceId);
  const other = pool.tryAcquire({ classTypes: CLASSES, models: ['other.safetensors'] })!;
  assert.notEqual(other.instanceId, first.instanceId);
  second.release({ ok: true });
  other.release({ ok: true });

  const noAffinity = await startPool(t, { affinity: false });
  const a = noAffinity.tryAcquire({ classTypes: [], models })!;
  a.release({ ok: true });
  assert.notEqual(noAffinity.tryAcquire({ classTypes: [], models })!.instanceId, a.instanceId);
});

test('leases run real prompts through the instance client', async (t) => {
  const pool = await startPool(t, { maxJobsPerInstance: 2 });
  const runs = Array.from({ length: 6 }, async (_, i) => {
    const lease = pool.tryAcquire({ classTypes: CLASSES })!;
    try {
      const result = await lease.client.run(tinyPrompt(`lease-${i}`, i), {
        timeoutMs: 10_000,
        onEvent: (event) => {
          if (event.type === 'started') lease.markStarted();
        },
      });
      lease.release({ ok: true });
      return { instance: lease.instanceId, files: result.outputs.length };
    } catch (error) {
      lease.release({ ok: false, error, infrastructure: true });
      throw error;
    }
  });
  const results = await Promise.all(runs);
  assert.deepEqual(
    results.map((r) => r.files),
    [1, 1, 1, 1, 1, 1],
  );
  assert.equal(new Set(results.map((r) => r.instance)).size, 3);
  assert.deepEqual(
    pool.list().map((s) => [s.running, s.queued]),
    [
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  );
});

test('drain stops new leases, waits for running ones, then removes the instance', async (t) => {
  const pool = await startPool(t, { maxJobsPerInstance: 4 });
  const lease = pool.tryAcquire({ classTypes: [], exclude: ['sim-1', 'sim-2'] })!;
  assert.equal(lease.instanceId, 'sim-0');
  let drained = false;
  const removed = once(pool, 'removed');
  const draining = pool.drain('sim-0').then(() => {
    drained = true;
  });
  assert.equal(pool.get('sim-0')?.state, 'draining');
  assert.equal(pool.drain('sim-0') instanceof Promise, true, 'drain twice is fine');
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['sim-1', 'sim-2'] }), null);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(drained, false, 'waits for the running lease');
  lease.release({ ok: true });
  await draining;
  assert.deepEqual(await removed, [{ instanceId: 'sim-0' }]);
  assert.equal(pool.get('sim-0'), undefined);
  assert.deepEqual(
    pool.list().map((s) => s.id),
    ['sim-1', 'sim-2'],
  );
  assert.throws(() => pool.drain('sim-0'), { code: 'instance_not_found' });
});

test('add() registers an instance at run time and rejects duplicates', async (t) => {
  const pool = new Pool({ ...FAST_POOL, instances: [] });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.tryAcquire({ classTypes: [] }), null);
  const snapshot = await pool.add({ url: sim.instances[2]!.url, labels: { gpu: 'a100' }, maxJobs: 3 });
  assert.equal(snapshot.id, new URL(sim.instances[2]!.url).host);
  assert.equal(snapshot.state, 'healthy');
  assert.deepEqual(snapshot.labels, { gpu: 'a100' });
  assert.equal(snapshot.maxJobs, 3);
  await assert.rejects(pool.add({ url: `${sim.instances[2]!.url}/` }), { code: 'instance_exists' });
  await assert.rejects(pool.add({ id: snapshot.id, url: sim.instances[1]!.url }), {
    code: 'instance_exists',
  });
  await assert.rejects(pool.add({ url: 'ftp://nope' }), { code: 'invalid_instance_config' });
  assert.ok(pool.tryAcquire({ classTypes: [] }));
});

test('close() is idempotent and leaves a pool that hands out nothing', async (t) => {
  const pool = await startPool(t);
  const lease = pool.tryAcquire({ classTypes: [] })!;
  await Promise.all([pool.close(), pool.close()]);
  assert.equal(lease.signal.aborted, true, 'held leases learn the instance is gone');
  assert.equal(pool.tryAcquire({ classTypes: [] }), null);
  assert.deepEqual(pool.list(), []);
  await assert.rejects(pool.add({ url: sim.instances[0]!.url }), { code: 'pool_closed' });
  lease.release({ ok: true });
});

test('rejects invalid settings at construction, naming the entry', () => {
  assert.throws(
    () => new Pool({ ...FAST_POOL, instances: [{ url: 'http://a:1', weight: -1 }] }),
    /instances\[0\]\.weight/,
  );
  assert.throws(
    () => new Pool({ ...FAST_POOL, instances: [{ url: 'http://a:1' }, { url: 'http://a:1/' }] }),
    { code: 'instance_exists' },
  );
  assert.throws(() => new Pool({ ...FAST_POOL, maxJobsPerInstance: 0, instances: [] }), /maxJobsPerInstance/);
});
