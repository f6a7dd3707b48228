// Capability-aware routing with instances that really differ: a proxy edits one instance's
// /object_info. Only instances with every class get the work; canEverRun names what no instance
// has; a 400 for an unknown class refreshes that instance's /object_info.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool, type PoolOptions } from '../../src/pool/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { type ObjectInfoProxy, startObjectInfoProxy } from './fixtures/object-info-proxy.ts';
import { FAST_POOL, tinyPrompt, waitFor } from './helpers.ts';

// Routing by capabilities, not health: a check that times out on a loaded machine (FAST_POOL allows
// 1 s) would mark an instance degraded and take it out of routing, which these tests do not expect.
const POOL = { ...FAST_POOL, healthCheckTimeoutMs: 10_000 };

let sim: Simulator;
let proxy: ObjectInfoProxy;
before(async () => {
  sim = await startSimulator({ port: 0, instances: 2 });
  proxy = await startObjectInfoProxy(sim.instances[1]!.url, { drop: ['ImageInvert'] });
});
after(async () => {
  await proxy.close();
  await sim.close();
});

type AfterHook = { after: (fn: () => Promise<void>) => void };

/** A pool with POOL's settings and `options`, started with every instance healthy, closed after `t`. */
async function healthyPool(
  t: AfterHook,
  options: Partial<PoolOptions> & Pick<PoolOptions, 'instances'>,
): Promise<Pool> {
  const pool = new Pool({ ...POOL, ...options });
  t.after(() => pool.close());
  await pool.start();
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000, 'healthy');
  return pool;
}

/** The routing tests' pool: a full instance and one without ImageInvert, capabilities loaded. */
async function startPool(t: AfterHook): Promise<Pool> {
  const pool = await healthyPool(t, {
    maxJobsPerInstance: 2,
    instances: [
      { id: 'full', url: sim.instances[0]!.url },
      { id: 'partial', url: proxy.url },
    ],
  });
  await Promise.all([pool.nodeDefsFor('full'), pool.nodeDefsFor('partial')]);
  return pool;
}

test('routes work needing a class only to instances that have it', async (t) => {
  proxy.add = [];
  const pool = await startPool(t);
  const invert = ['EmptyImage', 'ImageInvert', 'SaveImage'];
  const plain = ['EmptyImage', 'SaveImage'];
  assert.ok('ImageInvert' in (await pool.nodeDefsFor('full')));
  assert.equal('ImageInvert' in (await pool.nodeDefsFor('partial')), false);
  const a = pool.tryAcquire({ classTypes: invert })!;
  const b = pool.tryAcquire({ classTypes: invert })!;
  assert.deepEqual([a.instanceId, b.instanceId], ['full', 'full'], 'even when the other instance is idle');
  assert.equal(pool.tryAcquire({ classTypes: invert }), null, 'the only capable instance is full');
  assert.equal(pool.tryAcquire({ classTypes: plain })?.instanceId, 'partial');
  assert.deepEqual(pool.canEverRun(invert), { ok: true });
  assert.deepEqual(pool.canEverRun(['ImageInvert', 'NotAnywhere']), { ok: false, missing: ['NotAnywhere'] });
});

test('a 400 for an unknown class refreshes the instance and stops routing that class there', async (t) => {
  proxy.add = ['GhostNode'];
  const pool = await startPool(t);
  assert.deepEqual(pool.canEverRun(['GhostNode']), { ok: true });
  const lease = pool.tryAcquire({ classTypes: ['GhostNode'] })!;
  assert.equal(lease.instanceId, 'partial');
  const prompt = { ...tinyPrompt('ghost', 3), '3': { class_type: 'GhostNode', inputs: {} } };
  const error = await lease.client.queuePrompt(prompt).then(
    () => assert.fail('the server does not have GhostNode'),
    (e: unknown) => e,
  );
  assert.equal((error as { code?: string }).code, 'comfy_validation');
  // The instance no longer advertises it (e.g. a custom node was uninstalled).
  proxy.add = [];
  const before = proxy.objectInfoRequests;
  lease.release({ ok: false, error, infrastructure: false });
  assert.equal(pool.get('partial')!.breaker, 'closed', 'a validation error is not an infrastructure failure');
  assert.equal(pool.tryAcquire({ classTypes: ['GhostNode'] }), null);
  await waitFor(pool, 'instance', () => proxy.objectInfoRequests > before, 5000, '/object_info refreshed');
  await waitFor(pool, 'instance', () => !pool.canEverRun(['GhostNode']).ok, 5000, 'capabilities updated');
  assert.deepEqual(pool.canEverRun(['GhostNode']), { ok: false, missing: ['GhostNode'] });
});

test('instances with the same /object_info share one parsed copy, across refreshes', async (t) => {
  proxy.add = [];
  const pool = new Pool({
    ...POOL,
    instances: [
      { id: 'a', url: sim.instances[0]!.url },
      { id: 'b', url: sim.instances[1]!.url },
      { id: 'partial', url: proxy.url },
    ],
  });
  t.after(() => pool.close());
  await pool.start();
  const a = await pool.nodeDefsFor('a');
  assert.equal(await pool.nodeDefsFor('b'), a, 'identical answers: one object');
  assert.notEqual(await pool.nodeDefsFor('partial'), a, 'a different answer keeps its own');
  await pool.refreshCapabilities();
  assert.equal(await pool.nodeDefsFor('b'), a, 'a reload of the same answer gives the same object');
  assert.equal(await pool.nodeDefsFor('a'), a);
});

test('forgetting an unknown class on one instance leaves instances sharing its definitions alone', async (t) => {
  const twin = await startObjectInfoProxy(sim.instances[0]!.url, { add: ['GhostNode'] });
  t.after(() => twin.close());
  proxy.drop = [];
  proxy.add = ['GhostNode'];
  t.after(() => {
    proxy.drop = ['ImageInvert'];
  });
  const pool = await healthyPool(t, {
    instances: [
      { id: 'one', url: proxy.url },
      { id: 'two', url: twin.url },
    ],
  });
  assert.equal(await pool.nodeDefsFor('one'), await pool.nodeDefsFor('two'), 'shared definitions');
  const lease = pool.tryAcquire({ classTypes: ['GhostNode'] })!;
  const error = await lease.client
    .queuePrompt({ ...tinyPrompt('ghost', 4), '3': { class_type: 'GhostNode', inputs: {} } })
    .then(
      () => assert.fail('the server does not have GhostNode'),
      (e: unknown) => e,
    );
  lease.release({ ok: false, error, infrastructure: false });
  const other = lease.instanceId === 'one' ? 'two' : 'one';
  const next = pool.tryAcquire({ classTypes: ['GhostNode'] });
  assert.equal(next?.instanceId, other, 'the twin still lists GhostNode');
  assert.equal(pool.tryAcquire({ classTypes: ['GhostNode'] }), null, 'the instance that refused it does not');
  next?.release({ ok: true });
});

test('instances load /object_info at most four at a time, so a pool-wide reconnect cannot stack a copy per instance', async (t) => {
  const gauge = { inFlight: 0, max: 0 };
  const proxies = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      startObjectInfoProxy(sim.instances[i % 2]!.url, { delayMs: 40, gauge }),
    ),
  );
  t.after(() => Promise.all(proxies.map((p) => p.close())));
  const pool = new Pool({
    ...POOL,
    instances: proxies.map((p, i) => ({ id: `i${i}`, url: p.url })),
  });
  t.after(() => pool.close());
  await pool.start();
  await Promise.all(proxies.map((_, i) => pool.nodeDefsFor(`i${i}`)));
  assert.ok(gauge.max >= 2 && gauge.max <= 4, `at start: ${gauge.max} at once`);
  gauge.max = 0;
  const before = proxies.reduce((n, p) => n + p.objectInfoRequests, 0);
  await pool.refreshCapabilities();
  assert.equal(proxies.reduce((n, p) => n + p.objectInfoRequests, 0) - before, 12, 'every instance reloaded');
  assert.ok(gauge.max >= 2 && gauge.max <= 4, `on refresh: ${gauge.max} at once`);
  assert.equal(gauge.inFlight, 0);
});

test('an instance that refuses a connection takes no more leases, though its socket is still open', async (t) => {
  const front = await startObjectInfoProxy(sim.instances[0]!.url);
  t.after(() => front.close());
  const pool = await healthyPool(t, {
    // Checks only when asked for: the refusal alone must take the instance out.
    healthCheckIntervalMs: 60_000,
    recoveryProbeIntervalMs: 60_000,
    instances: [
      { id: 'refusing', url: front.url },
      { id: 'other', url: sim.instances[1]!.url },
    ],
  });
  await front.refuseRequests();
  const lease = pool.tryAcquire({ classTypes: [], exclude: ['other'] })!;
  assert.equal(lease.instanceId, 'refusing');
  const error = await lease.client.queuePrompt(tinyPrompt('refused', 5)).then(
    () => assert.fail('nothing listens'),
    (e: unknown) => e,
  );
  assert.equal((error as { notSent?: boolean }).notSent, true, String(error));
  lease.release({ ok: false, error, infrastructure: true });
  assert.equal(pool.get('refusing')?.state, 'degraded', 'its socket is still open, yet it takes no work');
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['other'] }), null);
  const next = pool.tryAcquire({ classTypes: [] });
  assert.equal(next?.instanceId, 'other');
  next?.release({ ok: true });
});

test('with capabilityLoadsAfter, an instance loads /object_info by itself only once it resolves; a caller need not wait', async (t) => {
  const held = await startObjectInfoProxy(sim.instances[0]!.url);
  const asked = await startObjectInfoProxy(sim.instances[1]!.url);
  t.after(() => Promise.all([held.close(), asked.close()]));
  const gate = Promise.withResolvers<void>();
  const pool = await healthyPool(t, {
    capabilityLoadsAfter: gate.promise,
    instances: [
      { id: 'held', url: held.url },
      { id: 'asked', url: asked.url },
    ],
  });
  // Checks ran (each starts the instance's own load, held here); a caller's load goes at once.
  assert.ok('EmptyImage' in (await pool.nodeDefsFor('asked')));
  assert.equal(held.objectInfoRequests, 0, 'held until the gate opens');
  assert.equal(asked.objectInfoRequests, 1, 'the held load does not repeat what a caller loaded');
  gate.resolve();
  await waitFor(pool, 'instance', () => held.objectInfoRequests === 1, 5000, 'loaded once released');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(asked.objectInfoRequests, 1);
});
