// Failover at the pool level: many leases run prompts while instances crash and restart at
// random. No lease may stay stuck, every job completes exactly once, and work moves to the
// instances that are alive.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool } from '../../src/pool/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { FAST_POOL, tinyPrompt } from './helpers.ts';
import { runJobs } from './work-loop.ts';

let sim: Simulator;
before(async () => {
  sim = await startSimulator({ port: 0, instances: 4, nodeDelayMs: 5 });
});
after(() => sim.close());

test('jobs survive random crashes and restarts: none stuck, none lost, work moves to live instances', async (t) => {
  const pool = new Pool({
    ...FAST_POOL,
    maxJobsPerInstance: 2,
    instances: sim.instances.map((s, i) => ({ id: `f-${i}`, url: s.url })),
  });
  t.after(() => pool.close());
  await pool.start();

  const deadline = AbortSignal.timeout(60_000);
  const restarts: Array<Promise<void>> = [];
  const timers = new Set<NodeJS.Timeout>();
  const down = new Set<number>();
  /** Per instance: [crashed, restarted] intervals (restarted = Infinity while down). */
  const outages: Array<{ instanceId: string; from: number; to: number }> = [];
  /** Every state the pool reported, in order. */
  const reports: Array<{ instanceId: string; at: number; state: string }> = [];
  let crashes = 0;
  let failovers = 0;
  pool.on('failover', () => failovers++);
  pool.on('instance', (snapshot) =>
    reports.push({ instanceId: snapshot.id, at: performance.now(), state: snapshot.state }),
  );

  // Chaos: crash a random live instance (never the last one), restart it a little later.
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let chaosDone = false;
  // Crashes are paced by progress as well as by time: on a loaded machine an attempt can take seconds,
  // and crashes every 80-200 ms of wall clock then hit nearly every attempt until a job runs out of
  // attempts ("too many attempts", the test's known flake under load).
  let completed = 0;
  let completedAtCrash = 0;
  const chaos = (async () => {
    while (!chaosDone && !deadline.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 80 + random() * 120));
      if (chaosDone) break;
      if (completed - completedAtCrash < 4) continue;
      completedAtCrash = completed;
      const alive = sim.instances.map((_, i) => i).filter((i) => !down.has(i));
      if (alive.length <= 1) continue;
      const victim = alive[Math.floor(random() * alive.length)]!;
      down.add(victim);
      crashes++;
      // Recorded before the crash, so a report the pool makes while the crash is under way counts.
      const outage = { instanceId: `f-${victim}`, from: performance.now(), to: Number.POSITIVE_INFINITY };
      outages.push(outage);
      await sim.instances[victim]!.crash();
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          restarts.push(
            sim.instances[victim]!.restart().then(() => {
              outage.to = performance.now();
              down.delete(victim);
            }),
          );
        },
        100 + random() * 300,
      );
      timers.add(timer);
    }
  })();

  const byInstance = new Map<string, number>();
  const records = await runJobs(pool, {
    jobs: 200,
    concurrency: 8,
    prompt: (i) => tinyPrompt(`failover-${i}`, i),
    attemptTimeoutMs: 15_000,
    signal: deadline,
    onComplete: (_record, instanceId) => {
      completed++;
      byInstance.set(instanceId, (byInstance.get(instanceId) ?? 0) + 1);
    },
  });
  chaosDone = true;
  await chaos;
  for (const timer of timers) clearTimeout(timer);
  await Promise.all(restarts);

  assert.equal(records.length, 200);
  for (const record of records) {
    assert.equal(record.attempts.filter((a) => a.ok).length, 1, `job ${record.index} completed exactly once`);
    assert.ok(record.attempts.at(-1)!.ok);
  }
  assert.ok(crashes >= 3, `chaos crashed ${crashes} times`);
  assert.ok(failovers >= 1, 'some work failed over');
  const retried = records.filter((r) => r.attempts.length > 1);
  // Work that failed on a crashed instance ran to completion elsewhere, promptly.
  const recoveryMs = retried.map((r) => r.attempts.at(-1)!.at - r.attempts.find((a) => !a.ok)!.at);
  assert.ok(Math.max(...recoveryMs) < 10_000, `slowest failover took ${Math.max(...recoveryMs)} ms`);
  // No lease went to a crashed instance that the pool itself had reported not healthy since the
  // crash, so retries ran on live instances. Judged by the pool's own reports, not by a fixed grace
  // after the crash: the close reaches the pool on this event loop, and with the suite's other files
  // busy on a 2-core machine a turn took longer than the 150 ms this test used to allow.
  const stateAt = (instanceId: string, since: number, at: number): string | undefined =>
    reports.findLast((r) => r.instanceId === instanceId && r.at >= since && r.at < at)?.state;
  const noticed = outages.filter((o) =>
    reports.some(
      (r) => r.instanceId === o.instanceId && r.at >= o.from && r.at < o.to && r.state !== 'healthy',
    ),
  );
  assert.ok(noticed.length >= 1, 'the pool reported at least one crashed instance down');
  const misrouted = records.flatMap((r) =>
    r.attempts.filter((a) =>
      outages.some((o) => {
        if (o.instanceId !== a.instanceId || a.leasedAt < o.from || a.leasedAt >= o.to) return false;
        const state = stateAt(o.instanceId, o.from, a.leasedAt);
        return state !== undefined && state !== 'healthy';
      }),
    ),
  );
  assert.deepEqual(misrouted, [], 'leases granted on an instance while it was down');
  // No lease is left behind on any instance.
  assert.deepEqual(
    pool.list().map((s) => s.running + s.queued),
    [0, 0, 0, 0],
  );
  t.diagnostic(
    `crashes=${crashes} failovers=${failovers} retried=${retried.length} per-instance=${JSON.stringify(Object.fromEntries(byInstance))}`,
  );
});
