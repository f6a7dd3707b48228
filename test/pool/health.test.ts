// Health and circuit breaking against simulated instances: a closed WebSocket makes an instance
// suspect at once, failed checks open the breaker, half-open probes close it again, passive
// infrastructure failures count, and stuck queues degrade the instance.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool } from '../../src/pool/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { FAST_POOL, tinyPrompt, waitFor } from './helpers.ts';

let sim: Simulator;
before(async () => {
  sim = await startSimulator({ port: 0, instances: 2 });
});
after(() => sim.close());

async function startPool(
  t: { after: (fn: () => Promise<void>) => void },
  overrides: Partial<ConstructorParameters<typeof Pool>[0]> = {},
): Promise<Pool> {
  for (const instance of sim.instances) instance.clearFaults();
  const pool = new Pool({
    ...FAST_POOL,
    instances: sim.instances.map((s, i) => ({ id: `sim-${i}`, url: s.url })),
    ...overrides,
  });
  t.after(() => pool.close());
  await pool.start();
  await waitFor(pool, 'instance', () => pool.list().every((s) => s.state === 'healthy'), 5000, 'all healthy');
  return pool;
}

test('a crash makes the instance suspect at once, opens the breaker, and a restart closes it', async (t) => {
  const pool = await startPool(t);
  const transitions: string[] = [];
  pool.on('breaker', ({ instanceId, position }) => {
    if (instanceId === 'sim-0') transitions.push(position);
  });
  const held = pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] })!;
  const target = sim.instances[0]!;
  await target.crash();
  // The WebSocket close alone takes it out of rotation, before any check fails.
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state !== 'healthy', 2000, 'suspect');
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] }), null);
  assert.equal(pool.tryAcquire({ classTypes: [] })?.instanceId, 'sim-1');
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'unhealthy', 3000, 'breaker open');
  assert.equal(pool.get('sim-0')!.breaker, 'open');
  assert.ok(held.signal.aborted, 'leases on the dead instance are told');
  assert.equal((held.signal.reason as { code?: string }).code, 'instance_down');
  held.release({ ok: false, error: held.signal.reason, infrastructure: true });
  assert.match(pool.get('sim-0')!.lastError ?? '', /./);

  await target.restart();
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'healthy', 5000, 'recovered');
  assert.deepEqual(transitions.slice(0, 1), ['open']);
  assert.ok(transitions.includes('half-open'));
  assert.equal(transitions.at(-1), 'closed');
  assert.equal(pool.get('sim-0')!.breaker, 'closed');
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] })?.instanceId, 'sim-0');
});

test('failing health checks open the breaker; half-open probes that keep failing keep it open', async (t) => {
  const pool = await startPool(t, { healthCheckIntervalMs: 100, recoveryProbeIntervalMs: 20 });
  const target = sim.instances[1]!;
  target.setFaults({ httpFailures: [{ path: '/system_stats', status: 500, times: 4 }] });
  await waitFor(pool, 'instance', () => pool.get('sim-1')!.breaker === 'open', 5000, 'open');
  assert.equal(pool.get('sim-1')!.state, 'unhealthy');
  assert.match(pool.get('sim-1')!.lastError ?? '', /500/);
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['sim-0'] }), null);
  // Four failures: two open it, the next half-open probes fail, then the instance answers again.
  await waitFor(pool, 'instance', () => pool.get('sim-1')!.state === 'healthy', 10_000, 'closed again');
  assert.equal(pool.get('sim-1')!.breaker, 'closed');
});

test('infrastructure failures reported through leases count towards the breaker', async (t) => {
  const pool = await startPool(t, { maxJobsPerInstance: 4 });
  const leases = [0, 1, 2].map(() => pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] })!);
  const failovers: string[] = [];
  pool.on('failover', ({ instanceId }) => failovers.push(instanceId));
  // A non-infrastructure failure (the prompt's own fault) does not count.
  leases[0]!.release({ ok: false, error: new Error('bad prompt'), infrastructure: false });
  assert.equal(pool.get('sim-0')!.breaker, 'closed');
  leases[1]!.release({ ok: false, error: new Error('socket hang up'), infrastructure: true });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pool.get('sim-0')!.breaker, 'closed');
  assert.equal(pool.get('sim-0')!.state, 'healthy');
  const third = pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] })!;
  third.release({ ok: false, error: new Error('reset'), infrastructure: true });
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.breaker === 'open', 2000, 'open');
  assert.deepEqual(failovers, ['sim-0', 'sim-0']);
  assert.ok(leases[2]!.signal.aborted);
  leases[2]!.release({ ok: false, error: leases[2]!.signal.reason, infrastructure: true });
  // The instance itself is fine: the half-open probe closes the breaker again.
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'healthy', 5000, 'recovered');
});

test('a success resets the consecutive failure count', async (t) => {
  const pool = await startPool(t, { maxJobsPerInstance: 4 });
  for (let i = 0; i < 5; i++) {
    pool
      .tryAcquire({ classTypes: [], exclude: ['sim-1'] })!
      .release({ ok: false, error: new Error('x'), infrastructure: true });
    await new Promise((resolve) => setImmediate(resolve));
    pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] })!.release({ ok: true });
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(pool.get('sim-0')!.breaker, 'closed');
});

test('prompts accepted but never started degrade the instance as stuck', async (t) => {
  const pool = await startPool(t, { stuckTimeoutMs: 300 });
  const target = sim.instances[0]!;
  target.setFaults({ neverStart: true });
  const lease = pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] })!;
  const queued = await lease.client.queuePrompt(tinyPrompt('stuck'));
  assert.ok(queued.promptId);
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'degraded', 3000, 'stuck');
  assert.match(pool.get('sim-0')!.reason ?? '', /stuck/);
  assert.equal(pool.tryAcquire({ classTypes: [], exclude: ['sim-1'] }), null);
  // The scheduler gives up on it (timeout) and the queue is cleared: activity again.
  target.clearFaults();
  await lease.client.cancel(queued.promptId).catch(() => undefined);
  lease.release({ ok: false, error: new Error('timed out'), infrastructure: true });
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'healthy', 3000, 'moving again');
});
