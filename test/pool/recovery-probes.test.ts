// Recovery of an instance after an outage (issue 13 point 16): while jobs wait, the breaker's
// growing half-open backoff is capped so an instance that comes back gets work within about a
// second, and a successful WebSocket reconnect triggers a health check at once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool } from '../../src/pool/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { FAST_POOL, waitFor } from './helpers.ts';

let sim: Simulator;
before(async () => {
  sim = await startSimulator({ port: 0, instances: 1 });
});
after(() => sim.close());

/** A pool whose breaker waits long before half-opening (as after several failed half-opens). */
async function startPool(
  t: { after: (fn: () => Promise<void>) => void },
  overrides: Partial<ConstructorParameters<typeof Pool>[0]> = {},
): Promise<Pool> {
  const pool = new Pool({
    ...FAST_POOL,
    instances: [{ id: 'sim-0', url: sim.instances[0]!.url }],
    healthFailureThreshold: 1,
    healthCheckIntervalMs: 30_000,
    // The first half-open wait; the backoff grows from here towards healthCheckIntervalMs.
    breakerHalfOpenAfterMs: 8000,
    recoveryProbeIntervalMs: 1000,
    ...overrides,
  });
  t.after(() => pool.close());
  await pool.start();
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'healthy', 5000, 'healthy');
  return pool;
}

async function outage(pool: Pool): Promise<void> {
  await sim.instances[0]!.crash();
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.breaker === 'open', 5000, 'breaker open');
}

test('while jobs wait, an instance that comes back is used within about a second', async (t) => {
  // The socket gives up reconnecting at once: only the capped probe can bring the instance back.
  const pool = await startPool(t, {
    clientOptions: {
      ...FAST_POOL.clientOptions,
      reconnect: { initialDelayMs: 20, maxDelayMs: 20, maxAttempts: 1 },
    },
  });
  await outage(pool);
  // A job waiting: the scheduler's acquisitions fail while the instance is down.
  assert.equal(pool.tryAcquire({ classTypes: [] }), null);
  const demand = setInterval(() => pool.tryAcquire({ classTypes: [] })?.release({ ok: true }), 200);
  t.after(() => clearInterval(demand));
  await sim.instances[0]!.restart();
  const back = Date.now();
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.breaker === 'closed', 5000, 'breaker closed');
  const elapsed = Date.now() - back;
  // The breaker alone would wait 8 s or more before its half-open probe.
  assert.ok(elapsed < 2500, `probed ${elapsed} ms after the instance came back`);
});

test('a successful WebSocket reconnect triggers a health check at once', async (t) => {
  const pool = await startPool(t);
  await outage(pool);
  // No job waits: the probe backoff is not capped, only the reconnect can expedite the check.
  await sim.instances[0]!.restart();
  const back = Date.now();
  await waitFor(pool, 'instance', () => pool.get('sim-0')!.state === 'healthy', 6000, 'healthy again');
  const elapsed = Date.now() - back;
  assert.ok(elapsed < 3000, `healthy ${elapsed} ms after the instance came back`);
});
