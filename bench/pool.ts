// Pool benchmark (`npm run bench -- pool`): throughput and scaling over 1/2/4/8 simulated
// instances at 100 ms per job, time from an instance crash to its work running elsewhere, and
// throughput through crash-and-restart cycles. Uses the pool's default health settings.
import { Pool, type PoolOptions } from '../src/pool/index.ts';
import { type Simulator, startSimulator } from '../src/simulator/index.ts';
import { tinyPrompt } from '../test/pool/helpers.ts';
import { type JobRecord, runJobs } from '../test/pool/work-loop.ts';

/** One-line description for the dispatcher. */
export const description =
  'instance pool: scaling 1/2/4/8 instances, crash failover time, throughput under crashes';

const JOB_MS = 100;
// The tiny prompt executes two nodes; the simulator's delay is per node.
const NODE_DELAY_MS = JOB_MS / 2;

function poolOptions(sim: Simulator, count: number, maxJobs: number): PoolOptions {
  return {
    instances: sim.instances.slice(0, count).map((s, i) => ({ id: `bench-${i}`, url: s.url })),
    maxJobsPerInstance: maxJobs,
    healthCheckIntervalMs: 30_000,
    healthFailureThreshold: 3,
  };
}

async function withPool<T>(options: PoolOptions, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = new Pool(options);
  try {
    await pool.start();
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

async function scaling(
  sim: Simulator,
  count: number,
  jobsPerInstance: number,
  maxJobs: number,
): Promise<{ instances: number; jobs: number; seconds: number; jobsPerSecond: number }> {
  return withPool(poolOptions(sim, count, maxJobs), async (pool) => {
    const jobs = jobsPerInstance * count;
    const started = performance.now();
    await runJobs(pool, {
      jobs,
      concurrency: count * maxJobs,
      prompt: (i) => tinyPrompt(`scale-${count}-${i}`, i + count * 100_000),
      signal: AbortSignal.timeout(120_000),
    });
    const seconds = (performance.now() - started) / 1000;
    return { instances: count, jobs, seconds: round(seconds), jobsPerSecond: round(jobs / seconds) };
  });
}

async function crashFailover(
  sim: Simulator,
  trials: number,
): Promise<{ trials: number; medianMs: number; maxMs: number; samplesMs: number[] }> {
  const samples: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    await withPool(poolOptions(sim, 4, 2), async (pool) => {
      const victim = trial % 4;
      const victimId = `bench-${victim}`;
      let crashAt = 0;
      let measured: number | null = null;
      const controller = new AbortController();
      const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(60_000)]);
      let completed = 0;
      const work = runJobs(pool, {
        jobs: 400,
        concurrency: 8,
        // Longer jobs so the crash always hits running work.
        prompt: (i) => tinyPrompt(`crash-${trial}-${i}`, i + 1_000_000 * (trial + 1)),
        signal,
        onStarted: (record: JobRecord, instanceId: string) => {
          if (crashAt === 0 || instanceId === victimId) return;
          if (record.attempts.some((a) => !a.ok && a.instanceId === victimId) && measured === null) {
            measured = performance.now() - crashAt;
          }
        },
        onComplete: () => {
          completed++;
          if (completed === 12 && crashAt === 0) {
            crashAt = performance.now();
            void sim.instances[victim]!.crash();
          }
          if (measured !== null) controller.abort();
        },
      }).catch(() => undefined);
      await work;
      await sim.instances[victim]!.restart();
      if (measured !== null) samples.push(round(measured));
    });
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    trials,
    medianMs: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
    maxMs: sorted.at(-1) ?? Number.NaN,
    samplesMs: samples,
  };
}

async function crashCycles(
  sim: Simulator,
  seconds: number,
): Promise<{
  jobsPerSecond: number;
  baselineJobsPerSecond: number;
  ratio: number;
  crashes: number;
  jobs: number;
}> {
  const baseline = await scaling(sim, 4, Math.round((seconds * 1000) / JOB_MS / 2), 2);
  return withPool(poolOptions(sim, 4, 2), async (pool) => {
    let crashes = 0;
    let running = true;
    const cycle = (async () => {
      let i = 0;
      while (running) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (!running) break;
        const victim = sim.instances[i++ % 4]!;
        crashes++;
        await victim.crash();
        await new Promise((resolve) => setTimeout(resolve, 500));
        await victim.restart();
      }
    })();
    const jobs = Math.round((seconds * 1000 * 4) / JOB_MS);
    const started = performance.now();
    await runJobs(pool, {
      jobs,
      concurrency: 8,
      prompt: (i) => tinyPrompt(`cycle-${i}`, i + 5_000_000),
      signal: AbortSignal.timeout(300_000),
    });
    const elapsed = (performance.now() - started) / 1000;
    running = false;
    await cycle;
    const jobsPerSecond = round(jobs / elapsed);
    return {
      jobsPerSecond,
      baselineJobsPerSecond: baseline.jobsPerSecond,
      ratio: round(jobsPerSecond / baseline.jobsPerSecond),
      crashes,
      jobs,
    };
  });
}

/** Runs the pool benchmark. Options: `--jobs-per-instance N` (default 30), `--crash-trials N` (default 4). */
export async function run(
  args: Record<string, string>,
): Promise<{ data: Record<string, unknown>; summary: string }> {
  const jobsPerInstance = Number(args['jobs-per-instance'] ?? 30);
  const crashTrials = Number(args['crash-trials'] ?? 4);
  const cycleSeconds = Number(args['cycle-seconds'] ?? 6);
  const sim = await startSimulator({ port: 0, instances: 8, nodeDelayMs: NODE_DELAY_MS });
  try {
    const scale = [];
    for (const count of [1, 2, 4, 8]) scale.push(await scaling(sim, count, jobsPerInstance, 2));
    const single = scale[0]!.jobsPerSecond;
    const rows = scale.map((s) => ({ ...s, efficiency: round(s.jobsPerSecond / (single * s.instances)) }));
    const failover = await crashFailover(sim, crashTrials);
    const cycles = await crashCycles(sim, cycleSeconds);
    const summary = [
      `Simulated instances, ${JOB_MS} ms per job, maxJobsPerInstance 2, default health settings.`,
      '',
      '| instances | jobs | seconds | jobs/s | scaling efficiency |',
      '|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) => `| ${r.instances} | ${r.jobs} | ${r.seconds} | ${r.jobsPerSecond} | ${pct(r.efficiency)} |`,
      ),
      '',
      `Crash → work running elsewhere: median ${failover.medianMs} ms, max ${failover.maxMs} ms over ${failover.samplesMs.length} trials.`,
      `Crash-and-restart cycles (4 instances, one crash per second, back after 0.5 s): ${cycles.jobsPerSecond} jobs/s vs ${cycles.baselineJobsPerSecond} without crashes (${pct(cycles.ratio)}), ${cycles.crashes} crashes.`,
    ].join('\n');
    return { data: { jobMs: JOB_MS, scaling: rows, crashFailover: failover, crashCycles: cycles }, summary };
  } finally {
    await sim.close();
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function pct(n: number): string {
  return `${Math.round(n * 1000) / 10} %`;
}
