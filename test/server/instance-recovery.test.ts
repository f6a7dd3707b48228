// Recovery after an outage, end to end (issue 13 point 16): a real gateway over a simulator that
// crashes, with a breaker whose half-open wait has grown long (8 s here; it grows towards the 30 s
// check interval during a real outage). An async job submitted while the instance is down queues
// with waiting_reason no_instance_available; when the instance listens again on the same port, the
// job is dispatched and succeeds within about a second, by either path: the probe backoff capped
// while work waits, or the immediate health check of a WebSocket reconnect.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GatewayOptions } from '../../src/server/index.ts';
import { invertPrompt, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

type Sim = NonNullable<TestStack['sim']['instances'][0]>;

/** The first half-open wait; the breaker alone would leave a returning instance idle this long. */
const HALF_OPEN_MS = 8000;
/** "Within about a second" of the instance listening again: dispatched, run and succeeded. */
const BOUND_MS = 1500;

async function outageAndReturn(
  t: { after: (fn: () => Promise<void>) => void; diagnostic: (msg: string) => void },
  pool: GatewayOptions['pool'],
): Promise<{ dispatchMs: number; succeededMs: number }> {
  const stack = await startTestStack({
    env: { HEALTH_FAILURE_THRESHOLD: '1', HEALTH_CHECK_INTERVAL_MS: '30000' },
    pool,
  });
  t.after(() => stack.close());
  const gw = stack.gateway.pool;
  const id = gw.list()[0]?.id as string;
  const sim = stack.sim.instances[0] as Sim;

  const open = new Promise<void>((resolve) => {
    const onInstance = () => {
      if (gw.get(id)?.breaker !== 'open') return;
      gw.off('instance', onInstance);
      resolve();
    };
    gw.on('instance', onInstance);
  });
  await sim.crash();
  await open;

  const queued = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('recovery') } });
  assert.equal(queued.status, 201, JSON.stringify(queued.body));
  assert.equal(queued.body.status, 'queued');
  assert.equal(queued.body.waiting_reason, 'no_instance_available');
  // Down for a while with the job waiting: the breaker's half-open probes keep failing.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal((await stack.request(`/api/v2/jobs/${queued.body.id}`)).body.status, 'queued');

  await sim.restart();
  const back = Date.now();
  assert.equal(
    await waitForStatus(stack, queued.body.id, ['succeeded', 'failed'], HALF_OPEN_MS * 2),
    'succeeded',
  );
  const job = (await stack.request(`/api/v2/jobs/${queued.body.id}`)).body;
  const dispatchMs = Date.parse(job.attempts[0].started_at) - back;
  const succeededMs = Date.parse(job.completed_at) - back;
  t.diagnostic(`dispatched ${dispatchMs} ms, succeeded ${succeededMs} ms after the instance was back`);
  return { dispatchMs, succeededMs };
}

test('while a job waits, the capped probe brings a returning instance back within about a second', async (t) => {
  // The socket gives up reconnecting at once, so only the health probe can notice the return;
  // uncapped, its half-open wait would be HALF_OPEN_MS or more.
  const { succeededMs } = await outageAndReturn(t, {
    breakerHalfOpenAfterMs: HALF_OPEN_MS,
    recoveryProbeIntervalMs: 1000,
    clientOptions: { reconnect: { initialDelayMs: 20, maxDelayMs: 20, maxAttempts: 1 } },
  });
  assert.ok(succeededMs < BOUND_MS, `succeeded ${succeededMs} ms after the instance came back`);
});

test('a WebSocket reconnect runs the health check at once and the waiting job goes there', async (t) => {
  // The probe cap cannot help (capped at 10 s, above the 8 s wait): only the socket's return can
  // expedite the check. The socket retries every 250 ms, so it finds the instance at once.
  const { succeededMs } = await outageAndReturn(t, {
    breakerHalfOpenAfterMs: HALF_OPEN_MS,
    recoveryProbeIntervalMs: 10_000,
    clientOptions: { reconnect: { initialDelayMs: 250, maxDelayMs: 250, maxAttempts: 1000 } },
  });
  assert.ok(succeededMs < BOUND_MS, `succeeded ${succeededMs} ms after the instance came back`);
});
