// End to end through the gateway: 1,000 jobs over 4 simulated instances while instances crash
// and restart at random. Every job must succeed exactly once (no job lost, none stuck, none run
// to completion twice), and the pool must be whole again afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';
import { waitFor } from './helpers.ts';

const JOBS = 1000;
const CLIENTS = 64;

let stack: TestStack;
before(async () => {
  stack = await startTestStack({
    instances: 4,
    nodeDelayMs: 1,
    // Random infrastructure crashes, not poison jobs: a job may see several of them.
    env: {
      MAX_ATTEMPTS: '10',
      MAX_SUSPECT_ATTEMPTS: '10',
      MAX_JOBS_PER_INSTANCE: '2',
      HEALTH_CHECK_INTERVAL_MS: '1000',
    },
  });
});
after(() => stack.close());

test('1,000 jobs over 4 instances with random crashes: all succeed exactly once', async (t) => {
  const deadline = AbortSignal.timeout(120_000);
  const down = new Set<number>();
  const restarts: Array<Promise<void>> = [];
  // Pending restarts: timer → the crashed instance it will bring back.
  const timers = new Map<NodeJS.Timeout, number>();
  let crashes = 0;
  let refused = 0;
  let seed = 7;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let chaosDone = false;
  const chaos = (async () => {
    while (!chaosDone && !deadline.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 250 + random() * 400));
      if (chaosDone) break;
      const alive = stack.sim.instances.map((_, i) => i).filter((i) => !down.has(i));
      if (alive.length <= 2) continue;
      const victim = alive[Math.floor(random() * alive.length)]!;
      down.add(victim);
      crashes++;
      await stack.sim.instances[victim]!.crash();
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          restarts.push(stack.sim.instances[victim]!.restart().then(() => void down.delete(victim)));
        },
        150 + random() * 450,
      );
      timers.set(timer, victim);
    }
  })();

  // CLIENTS users, each submitting jobs one after another and waiting for each to end.
  const jobs: Array<Record<string, unknown>> = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < JOBS && !deadline.aborted) {
        const n = next++;
        const workflow = invertPrompt(`e2e-${n}`);
        (workflow['1']!.inputs as { color: number }).color = n;
        let res = await stack.request('/api/v2/jobs?wait=60', { body: { workflow } });
        // A waiting call is refused (no job created) while no instance is healthy: as a client
        // honouring Retry-After would, submit again once one is.
        while (res.status === 503 && res.body.error?.code === 'no_instance_available') {
          refused++;
          const pool = stack.gateway.pool;
          await waitFor(pool, 'instance', () => pool.list().some((s) => s.state === 'healthy'), 10_000);
          res = await stack.request('/api/v2/jobs?wait=60', { body: { workflow } });
        }
        assert.equal(res.status, 201, JSON.stringify(res.body));
        jobs.push(res.body);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  chaosDone = true;
  await chaos;
  // A crash just before the last job ended still has its restart pending: bring it back now, or
  // that instance stays down and "the pool is whole again" below can never hold.
  for (const [timer, victim] of timers) {
    clearTimeout(timer);
    restarts.push(stack.sim.instances[victim]!.restart().then(() => void down.delete(victim)));
  }
  timers.clear();
  await Promise.all(restarts);

  assert.equal(jobs.length, JOBS);
  const notSucceeded = jobs.filter((j) => j.status !== 'succeeded');
  assert.deepEqual(
    notSucceeded.map((j) => [j.id, j.status, j.error]),
    [],
    'every job succeeded',
  );
  assert.equal(new Set(jobs.map((j) => j.id)).size, JOBS);
  let retried = 0;
  for (const job of jobs) {
    const attempts = job.attempts as Array<{ instance_id: string; error: unknown }>;
    assert.equal(attempts.filter((a) => a.error === null).length, 1, `job ${job.id} succeeded exactly once`);
    assert.equal(attempts.at(-1)!.error, null);
    if (attempts.length > 1) retried++;
    assert.equal((job.outputs as unknown[]).length, 1);
  }
  assert.ok(crashes >= 5, `only ${crashes} crashes`);
  assert.ok(retried >= 1, 'some jobs failed over');

  // The pool is whole again: every instance healthy, no lease left.
  const pool = stack.gateway.pool;
  await waitFor(
    pool,
    'instance',
    () => pool.list().every((s) => s.state === 'healthy'),
    10_000,
    'all healthy',
  ).catch((error: Error) => {
    const detail = pool.list().map((s) => ({
      id: s.id,
      state: s.state,
      reason: s.reason,
      breaker: s.breaker,
      lastError: s.lastError,
      lastCheckAt: s.lastCheckAt,
      socket: pool.client(s.id)?.state,
    }));
    throw new Error(`${error.message}: ${JSON.stringify(detail)} at ${new Date().toISOString()}`);
  });
  assert.deepEqual(
    pool.list().map((s) => s.running + s.queued),
    [0, 0, 0, 0],
  );
  // Failed leases leave a readable last error (the job error's code and message).
  for (const s of pool.list()) assert.doesNotMatch(s.lastError ?? '', /\[object Object\]/);
  assert.ok(
    pool.list().some((s) => /^(comfy_connection|upstream_unavailable|instance_down)/.test(s.lastError ?? '')),
    JSON.stringify(pool.list().map((s) => s.lastError)),
  );
  const health = await stack.request('/health');
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  t.diagnostic(
    `${JOBS} jobs in ${seconds.toFixed(1)} s, ${crashes} crashes, ${retried} jobs retried, ${refused} submissions refused (503)`,
  );
});
