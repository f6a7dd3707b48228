// Fleet benchmark (issue 17): one gateway on SQLite against 1, 2 and 3 gateways on Redis (BullMQ),
// same box, same simulators, and 2 and 3 gateways on SQLite that share nothing (each drives its own
// part of the instances): what splitting the work over processes costs without a fleet. Per setup:
// overhead over the SDK straight at the simulator at concurrency 1 (p50/p99, requests round-robin
// over the gateways, interleaved with direct runs), and CPU per job of the gateways and of Redis (a
// redis-server of the bench's own, AOF off, so nothing else's load is counted) in three regimes:
// saturated (--jobs at --concurrency, jobs/s reported); paced, at fixed rates every setup sustains
// (--rates, --paced-seconds each; jobs start at once); and queued (--queued-jobs at --concurrency
// with the instances' node delay at --queued-node-delay-ms, so jobs wait in the queue as in front
// of real GPUs while the box has CPU to spare). Saturated, a box of two cores shared by up to three
// gateways, Redis, the simulators and the load generator measures how much they preempt one
// another as much as the work each job takes.
// Wall-clock figures on a shared box are noise, so Redis setups also get figures that do not
// depend on the load: Redis commands and request batches (socket reads) per job, from INFO before
// and after, and the Redis round trips on the c=1 critical path, measured by latency injection:
// the gateways are restarted behind a proxy that holds every Redis reply for --delay-ms, and the
// growth of the p50 divided by the delay is the number of round trips a request waits for in turn.
// Gateway syscalls and context switches per job (/proc) show how batching and preemption change
// with the number of gateways. Every gateway is warmed up as one alone would be (--warmup rounds
// at c=1 and --warmup-jobs at --concurrency, each times the number of gateways), so what is
// measured is the steady state of long-running gateways, not their JIT warm-up.
// Options: --only sqlitex1,sqlitex2,sqlitex3,redisx1,redisx2,redisx3, --samples, --warmup,
// --warmup-jobs, --jobs, --concurrency, --rates 200,400,600, --paced-seconds, --queued-jobs,
// --queued-node-delay-ms, --instances, --delay-ms, --delay-samples (0 skips the round-trip runs),
// --cpu-prof-dir DIR; BENCH_GATEWAY_ARGS adds Node options to the gateways (e.g. --perf-basic-prof).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { ComfyClient } from '../src/comfy/index.ts';
import {
  childCpuMs,
  CHILD_TIMEOUT_MS,
  freePort,
  loads,
  machineTicks,
  percentile,
  round,
  startSimulatorProcess,
  stealPercent,
  stopChild,
} from './lib/measure.ts';
import { promptSync, startGatewayProcess } from './lib/gateway.ts';
import type { BenchResult } from './run.ts';

export const description =
  'Fleet mode: overhead p50/p99 (c=1), jobs/s and CPU/job of gateways and Redis, 1/2/3 gateways on Redis vs 1 on SQLite';

const PROMPT = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 1234 } },
  '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
};

interface Setup {
  name: string;
  store: 'sqlite' | 'redis';
  gateways: number;
}

async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), CHILD_TIMEOUT_MS);
    child.stdout?.on('data', (d) => {
      if (String(d).includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
  return { url: `redis://127.0.0.1:${port}`, child };
}

const cpuOf = (child: ChildProcess): number => childCpuMs(child) ?? 0;

/** Syscalls and context switches of a process so far (Linux /proc; zeros elsewhere). */
interface ProcCounts {
  /** Read- and write-like system calls (/proc/<pid>/io syscr + syscw: socket I/O, epoll excluded). */
  syscalls: number;
  /** Context switches of its main thread, voluntary (it waited) and not (it was preempted). */
  voluntary: number;
  involuntary: number;
}

function procCounts(child: ChildProcess): ProcCounts {
  try {
    const io = readFileSync(`/proc/${child.pid}/io`, 'utf8');
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const field = (text: string, name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return {
      syscalls: field(io, 'syscr') + field(io, 'syscw'),
      voluntary: field(status, 'voluntary_ctxt_switches'),
      involuntary: field(status, 'nonvoluntary_ctxt_switches'),
    };
  } catch {
    return { syscalls: 0, voluntary: 0, involuntary: 0 };
  }
}

/** Sum of procCounts over processes. */
function sumCounts(children: ChildProcess[]): ProcCounts {
  const total = { syscalls: 0, voluntary: 0, involuntary: 0 };
  for (const c of children) {
    const n = procCounts(c);
    total.syscalls += n.syscalls;
    total.voluntary += n.voluntary;
    total.involuntary += n.involuntary;
  }
  return total;
}

/** What one run of jobs cost per job. */
interface Cost {
  /** The rate reached (in a paced run, below the rate asked for when the setup could not keep up). */
  jobsPerSecond: number;
  gatewayCpuMsPerJob: number;
  redisCpuMsPerJob: number;
  totalCpuMsPerJob: number;
  /** The gateways' main threads preempted by another process, per job. */
  involuntarySwitchesPerJob: number;
  /** Commands Redis ran per job (null on SQLite): ~15 when jobs start at once, 56-59 through BullMQ. */
  redisCommandsPerJob: number | null;
}

/** CPU per job at one fixed rate of submissions (a paced run). */
interface PacedRun extends Cost {
  rate: number;
}

/** Sets every simulated instance's node delay (the simulator's fault endpoint). */
async function setNodeDelay(urls: string[], ms: number): Promise<void> {
  await Promise.all(
    urls.map(async (url) => {
      const res = await request(`${url}/simulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nodeDelayMs: ms }),
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`simulator faults: ${res.statusCode}`);
    }),
  );
}

/** Targets of issue 17, against SQLite mode in the same run. */
const TARGET_P50_MS = 1;
const TARGET_CPU_RATIO = 2;

/** Commands Redis ran (those inside scripts included), by name, and the request batches it read. */
interface RedisCounters {
  commands: Record<string, number>;
  reads: number;
  /** Bytes Redis sent to its clients (replies and pub/sub deliveries). */
  outBytes: number;
}

async function redisCounters(redis: Redis): Promise<RedisCounters> {
  const [commandstats, stats] = await Promise.all([redis.info('commandstats'), redis.info('stats')]);
  const commands: Record<string, number> = {};
  for (const m of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    commands[m[1] as string] = Number(m[2]);
  const reads = Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? Number.NaN);
  const outBytes = Number(/^total_net_output_bytes:(\d+)/m.exec(stats)?.[1] ?? Number.NaN);
  return { commands, reads, outBytes };
}

/** Per-job figures between two readings (the bench's own INFO calls are left out). */
function perJob(before: RedisCounters, after: RedisCounters, jobs: number) {
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [name, calls] of Object.entries(after.commands)) {
    if (name === 'info') continue;
    const n = calls - (before.commands[name] ?? 0);
    if (n <= 0) continue;
    total += n;
    byCommand[name] = round(n / jobs, 2);
  }
  // Two INFO requests per reading.
  return {
    commands: round(total / jobs, 2),
    reads: round((after.reads - before.reads - 2) / jobs, 2),
    // The first reading's INFO replies are counted too (a few KB over the whole run).
    outBytes: Math.round((after.outBytes - before.outBytes) / jobs),
    byCommand,
  };
}

/**
 * A TCP proxy to Redis that holds every reply for `delayMs` (FIFO per connection): a round trip
 * on a request's critical path then adds the delay once to its latency, one off it adds nothing.
 */
async function delayProxy(target: string): Promise<{
  url: string;
  setDelay(ms: number): void;
  /** Mean delay actually applied since the last setDelay (timers fire late on a loaded box). */
  appliedMs(): number;
  close(): Promise<void>;
}> {
  const { hostname, port } = new URL(target);
  let delayMs = 0;
  let applied = 0;
  let held = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(s);
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (delayMs <= 0) {
        client.write(chunk);
        return;
      }
      const at = performance.now();
      // Same duration, so Node's timer list fires them in order: the stream stays in order.
      setTimeout(() => {
        applied += performance.now() - at;
        held++;
        client.write(chunk);
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${own}`,
    setDelay(ms) {
      delayMs = ms;
      applied = 0;
      held = 0;
    },
    appliedMs: () => (held > 0 ? applied / held : delayMs),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function run(args: Record<string, string>): Promise<BenchResult> {
  const samples = Number(args.samples ?? 300);
  const warmup = Number(args.warmup ?? 500);
  // 12,000 jobs: over 3,000 (2-4 s), three gateways' CPU per job spread from 1.4 to 2.3 ms
  // between back-to-back runs of the same code; over 12,000 two runs gave 1.98 and 2.04 ms.
  const jobs = Number(args.jobs ?? 12_000);
  // Jobs per gateway at --concurrency before anything is measured, so every gateway runs
  // optimized code however many share the load (V8 compiles hot functions fully only after a few
  // thousand jobs per process here: three gateways at 1,000 each ran most of them half-optimized).
  const warmupJobs = Number(args['warmup-jobs'] ?? 8000);
  const concurrency = Number(args.concurrency ?? 64);
  // Paced runs: jobs sent at fixed rates every setup sustains (three gateways top out at 700-950
  // jobs/s here), so the box is not saturated and what is measured is the work per job, not how
  // six busy processes on two cores slow each other down.
  const rates = (args.rates ?? '200,400,600')
    .split(',')
    .map(Number)
    .filter((r) => r > 0);
  const pacedSeconds = Number(args['paced-seconds'] ?? 15);
  // The queued run: a node delay at which the 8 instances, not the CPU, set the pace (one gateway
  // on SQLite reached 350-380 jobs/s here), so at c=64 jobs wait in the fleet's queue while the
  // box has CPU to spare.
  const queuedNodeDelayMs = Number(args['queued-node-delay-ms'] ?? 6);
  const queuedJobs = Number(args['queued-jobs'] ?? 6000);
  const instances = Number(args.instances ?? 8);
  const delayMs = Number(args['delay-ms'] ?? 10);
  const delaySamples = Number(args['delay-samples'] ?? 60);
  const cpuProfDir = args['cpu-prof-dir'] ?? null;
  const setups: Setup[] = [
    { name: 'sqlite ×1', store: 'sqlite', gateways: 1 },
    { name: 'sqlite ×2', store: 'sqlite', gateways: 2 },
    { name: 'sqlite ×3', store: 'sqlite', gateways: 3 },
    { name: 'redis ×1', store: 'redis', gateways: 1 },
    { name: 'redis ×2', store: 'redis', gateways: 2 },
    { name: 'redis ×3', store: 'redis', gateways: 3 },
  ].filter((s) => !args.only || args.only.split(',').includes(s.name.replace(' ×', 'x'))) as Setup[];
  let sim = await startSimulatorProcess(instances);
  let direct = new ComfyClient({ baseUrl: sim.urls[0] as string });
  await direct.connect();
  const agent = new Agent({ connections: concurrency * 2, pipelining: 1 });
  const body = JSON.stringify({ prompt: PROMPT });
  const results: Array<Record<string, unknown>> = [];
  const loadAtStart = loads();

  /**
   * Round-robin /prompt_sync over `gateways`; with `slow`, the queued run's prompt: a blur between
   * the two nodes (it takes the instances' node delay; the others take none) and a color of its
   * own each time (the instances would answer a repeated prompt from their cache, in no time).
   */
  const client = (gateways: Array<{ url: string }>, slow = false) => {
    let turn = 0;
    return async (): Promise<void> => {
      const gw = gateways[turn % gateways.length] as { url: string };
      const color = turn++;
      const payload = slow
        ? JSON.stringify({
            prompt: {
              '1': { class_type: 'EmptyImage', inputs: { ...PROMPT['1'].inputs, color } },
              '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 1, sigma: 1 } },
              '3': { class_type: 'PreviewImage', inputs: { images: ['2', 0] } },
            },
          })
        : body;
      await promptSync(gw.url, payload, agent);
    };
  };
  /** `count` gateways on `redisUrl` (or SQLite), each with a data dir of its own under `dataDir`. */
  const startAll = async (count: number, dataDir: string, redisUrl: string | null, tag: string) => {
    const nodeOptions = [
      process.env.BENCH_GATEWAY_ARGS ?? '',
      cpuProfDir && tag === 'gw' ? `--cpu-prof --cpu-prof-dir=${cpuProfDir}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    const gateways: Array<{ url: string; child: ChildProcess }> = [];
    for (let i = 0; i < count; i++) {
      gateways.push(
        await startGatewayProcess({
          // --cpu-prof-dir DIR: a CPU profile of each measured gateway (written when it stops).
          // BENCH_GATEWAY_ARGS: more Node options for the gateways only (as in bench/scale.ts).
          ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
          // Gateways on SQLite share nothing: each drives a part of the instances of its own.
          COMFYUI_URLS: (redisUrl ? sim.urls : sim.urls.filter((_, j) => j % count === i)).join(','),
          DATA_DIR: join(dataDir, `${tag}${i}`),
          MAX_QUEUE: '1000000',
          ...(redisUrl ? { REDIS_URL: redisUrl, STORAGE_URL: `file://${join(dataDir, 'storage')}` } : {}),
        }),
      );
    }
    return gateways;
  };
  /**
   * `count` jobs through `via`, the i-th sent at i/rate s (open loop: whether or not earlier ones
   * answered), at most `concurrency` out at once; resolves with the elapsed ms.
   */
  const paced = async (via: () => Promise<void>, count: number, rate: number) => {
    const start = performance.now();
    const out = new Set<Promise<void>>();
    for (let i = 0; i < count; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      while (out.size >= concurrency) await Promise.race(out);
      const sent: Promise<void> = via().finally(() => out.delete(sent));
      out.add(sent);
    }
    await Promise.all(out);
    return performance.now() - start;
  };
  /** c=1 latencies (ms, ascending) of `n` requests through `via`, each after one straight at the simulator. */
  const c1 = async (via: () => Promise<void>, n: number) => {
    const directMs: number[] = [];
    const gatewayMs: number[] = [];
    for (let i = 0; i < n; i++) {
      let t = performance.now();
      await direct.run(PROMPT);
      directMs.push(performance.now() - t);
      t = performance.now();
      await via();
      gatewayMs.push(performance.now() - t);
    }
    directMs.sort((a, b) => a - b);
    gatewayMs.sort((a, b) => a - b);
    return { directMs, gatewayMs };
  };

  try {
    for (const [index, setup] of setups.entries()) {
      // A simulator of its own per setup: its history (10,000 prompts per instance) and heap grow
      // over a setup's tens of thousands of jobs, and one shared by all made every later setup
      // share the box with a bigger, busier simulator than the SQLite baseline that runs first.
      if (index > 0) {
        await direct.close();
        await stopChild(sim.child);
        sim = await startSimulatorProcess(instances);
        direct = new ComfyClient({ baseUrl: sim.urls[0] as string });
        await direct.connect();
      }
      const dataDir = await mkdtemp(join(tmpdir(), 'gw-bench-fleet-'));
      const redis = setup.store === 'redis' ? await startRedis() : null;
      const info = redis ? new Redis(redis.url) : null;
      let gateways: Array<{ url: string; child: ChildProcess }> = [];
      try {
        gateways = await startAll(setup.gateways, dataDir, redis?.url ?? null, 'gw');
        const via = client(gateways);
        /** `count` jobs through the gateways (by `send`), `concurrency` at a time. */
        const load = async (count: number, send = via) => {
          let next = 0;
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
              while (next < count) {
                next++;
                await send();
              }
            }),
          );
        };
        // Warm-up per gateway: each one sees as many requests as a single gateway would. The c=1
        // rounds come last: jobs take the queue while the fleet's count of waiting entries (read
        // every second) still shows the burst, and the c=1 figures are of jobs that need none.
        await load(warmupJobs * gateways.length);
        for (let i = 0; i < warmup * gateways.length; i++) {
          await direct.run(PROMPT);
          await via();
        }
        const ticks1 = machineTicks();
        const c1Before = info ? await redisCounters(info) : null;
        const { directMs, gatewayMs } = await c1(via, samples);
        const c1After = info ? await redisCounters(info) : null;
        const steal1 = stealPercent(ticks1, machineTicks());

        /** What the gateways and Redis spent while `work` ran `count` jobs. */
        const spent = async (count: number, work: () => Promise<unknown>) => {
          const gw0 = gateways.reduce((n, g) => n + cpuOf(g.child), 0);
          const redis0 = redis ? cpuOf(redis.child) : 0;
          const counts0 = sumCounts(gateways.map((g) => g.child));
          const before = info ? await redisCounters(info) : null;
          const ticks = machineTicks();
          const t0 = performance.now();
          await work();
          const ms = performance.now() - t0;
          const steal = stealPercent(ticks, machineTicks());
          const gw = gateways.reduce((n, g) => n + cpuOf(g.child), 0) - gw0;
          const redisMs = redis ? cpuOf(redis.child) - redis0 : 0;
          const counts1 = sumCounts(gateways.map((g) => g.child));
          const after = info ? await redisCounters(info) : null;
          const redisPerJob = before && after ? perJob(before, after, count) : null;
          const cost: Cost = {
            jobsPerSecond: round(count / (ms / 1000), 1),
            gatewayCpuMsPerJob: round(gw / count),
            redisCpuMsPerJob: round(redisMs / count),
            totalCpuMsPerJob: round((gw + redisMs) / count),
            involuntarySwitchesPerJob: round((counts1.involuntary - counts0.involuntary) / count, 2),
            redisCommandsPerJob: redisPerJob?.commands ?? null,
          };
          return {
            cost,
            steal,
            syscallsPerJob: round((counts1.syscalls - counts0.syscalls) / count, 1),
            voluntarySwitchesPerJob: round((counts1.voluntary - counts0.voluntary) / count, 2),
            redis: redisPerJob,
          };
        };
        const saturated = await spent(jobs, () => load(jobs));

        // Paced: the same work at rates every setup sustains, each job sent when due.
        const pacedRuns: PacedRun[] = [];
        for (const rate of rates) {
          const count = Math.round(rate * pacedSeconds);
          pacedRuns.push({ rate, ...(await spent(count, () => paced(via, count, rate))).cost });
        }
        // Queued: every instance slowed so that jobs wait in the queue (as they do in front of real
        // GPUs) at the same c, the box not saturated: every fleet job takes BullMQ's path.
        await setNodeDelay(sim.urls, queuedNodeDelayMs);
        const slow = client(gateways, true);
        const queued = await spent(queuedJobs, () => load(queuedJobs, slow)).finally(() =>
          setNodeDelay(sim.urls, 0),
        );

        // Round trips on the critical path: the same gateways' code behind the delaying proxy.
        let criticalRoundTrips: number | null = null;
        if (redis && delaySamples > 0) {
          for (const g of gateways) await stopChild(g.child);
          gateways = [];
          const proxy = await delayProxy(redis.url);
          try {
            gateways = await startAll(setup.gateways, dataDir, proxy.url, 'rt');
            const viaProxy = client(gateways);
            for (let i = 0; i < 50; i++) await viaProxy();
            const plain = await c1(viaProxy, delaySamples);
            proxy.setDelay(delayMs);
            const delayed = await c1(viaProxy, delaySamples);
            const added = percentile(delayed.gatewayMs, 50) - percentile(plain.gatewayMs, 50);
            criticalRoundTrips = round(added / proxy.appliedMs(), 1);
          } finally {
            for (const g of gateways) await stopChild(g.child);
            gateways = [];
            await proxy.close();
          }
        }

        const c1Redis = c1Before && c1After ? perJob(c1Before, c1After, samples) : null;
        const loadRedis = saturated.redis;
        const row = {
          setup: setup.name,
          overheadP50Ms: round(percentile(gatewayMs, 50) - percentile(directMs, 50)),
          overheadP99Ms: round(percentile(gatewayMs, 99) - percentile(directMs, 99)),
          jobsPerSecond: saturated.cost.jobsPerSecond,
          gatewayCpuMsPerJob: saturated.cost.gatewayCpuMsPerJob,
          redisCpuMsPerJob: saturated.cost.redisCpuMsPerJob,
          totalCpuMsPerJob: saturated.cost.totalCpuMsPerJob,
          gatewaySyscallsPerJob: saturated.syscallsPerJob,
          gatewayVoluntarySwitchesPerJob: saturated.voluntarySwitchesPerJob,
          gatewayInvoluntarySwitchesPerJob: saturated.cost.involuntarySwitchesPerJob,
          redisCommandsPerJobC1: c1Redis?.commands ?? null,
          redisReadsPerJobC1: c1Redis?.reads ?? null,
          redisCommandsPerJobThroughput: loadRedis?.commands ?? null,
          redisReadsPerJobThroughput: loadRedis?.reads ?? null,
          redisOutBytesPerJobThroughput: loadRedis?.outBytes ?? null,
          criticalRoundTrips,
          redisCommandsByNameC1: c1Redis?.byCommand ?? null,
          redisCommandsByNameThroughput: loadRedis?.byCommand ?? null,
          paced: pacedRuns,
          queued: {
            nodeDelayMs: queuedNodeDelayMs,
            concurrency,
            ...queued.cost,
            redisCommandsByName: queued.redis?.byCommand ?? null,
          },
          stealPercentC1: steal1,
          stealPercentThroughput: saturated.steal,
        };
        results.push(row);
        process.stderr.write(`${JSON.stringify(row)}\n`);
      } finally {
        for (const g of gateways) await stopChild(g.child);
        info?.disconnect();
        if (redis) await stopChild(redis.child);
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    await direct.close();
    await agent.close();
    await stopChild(sim.child);
  }
  const base = results.find((r) => r.setup === 'sqlite ×1');
  const n = (v: unknown) => (v === null || v === undefined ? '—' : String(v));
  /** A setup's unsaturated runs: the paced ones, then the queued one (as rate 0). */
  const calmRuns = (r: Record<string, unknown>): PacedRun[] => [
    ...(r.paced as PacedRun[]),
    { rate: 0, ...(r.queued as Cost) },
  ];
  const calmName = (run: PacedRun) =>
    run.rate > 0 ? `${run.rate} jobs/s` : `queued (c=${concurrency}, ${queuedNodeDelayMs} ms nodes)`;
  /** An unsaturated run's CPU per job over that of the same run of `against` (null without one). */
  const calmRatio = (run: PacedRun, against = base) => {
    const baseRun = against ? calmRuns(against).find((b) => b.rate === run.rate) : undefined;
    return baseRun ? round(run.totalCpuMsPerJob / baseRun.totalCpuMsPerJob, 2) : null;
  };
  const verdict = (ratio: number) => `${ratio}× (${ratio <= TARGET_CPU_RATIO ? 'met' : 'missed'})`;
  const verdicts = base
    ? results
        .filter((r) => (r.setup as string).startsWith('redis'))
        .map((r) => {
          const p50 = round((r.overheadP50Ms as number) - (base.overheadP50Ms as number));
          const cpu = round((r.totalCpuMsPerJob as number) / (base.totalCpuMsPerJob as number), 2);
          const calm = calmRuns(r)
            .map((run) => {
              const ratio = calmRatio(run);
              return ratio === null ? null : `${verdict(ratio)} at ${calmName(run)}`;
            })
            .filter(Boolean)
            .join(', ');
          // As many gateways on SQLite, sharing nothing: what splitting the work costs by itself.
          const peer = results.find(
            (p) => p !== base && p.setup === (r.setup as string).replace('redis', 'sqlite'),
          );
          const split = peer
            ? `; against ${peer.setup} (sharing nothing, for what the split alone costs): ${calmRuns(r)
                .map((run) => `${n(calmRatio(run, peer))}× at ${calmName(run)}`)
                .join(
                  ', ',
                )}, ${round((r.totalCpuMsPerJob as number) / (peer.totalCpuMsPerJob as number), 2)}× saturated`
            : '';
          return `- ${r.setup}: p50 overhead ${p50 >= 0 ? '+' : ''}${p50} ms over SQLite (target ≤ ${TARGET_P50_MS} ms: ${p50 <= TARGET_P50_MS ? 'met' : 'missed'}); CPU per job against SQLite ×1 (target ≤ ${TARGET_CPU_RATIO}×): ${calm ? `${calm}; ` : ''}${verdict(cpu)} saturated (c=${concurrency}, 0 ms nodes)${split}`;
        })
    : ['- (no SQLite baseline in this run: no verdicts)'];
  const lines = [
    `Fleet benchmark: ${instances} simulated instances (0 ms nodes), c=1 over ${samples} samples after ${warmup} warm-up rounds and ${warmupJobs} warm-up jobs at c=${concurrency} per gateway, throughput ${jobs} jobs at c=${concurrency} (saturation), then ${pacedSeconds} s at each of ${rates.join(', ')} jobs/s and ${queuedJobs} jobs queued behind ${queuedNodeDelayMs} ms nodes; load average at start ${loadAtStart.join(' ')}, at end ${loads().join(' ')}.`,
    '',
    '| setup | overhead p50 | overhead p99 | jobs/s | gateway CPU/job | Redis CPU/job | total CPU/job | vs SQLite |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.setup} | ${r.overheadP50Ms} ms | ${r.overheadP99Ms} ms | ${r.jobsPerSecond} | ${r.gatewayCpuMsPerJob} ms | ${r.redisCpuMsPerJob} ms | ${r.totalCpuMsPerJob} ms | ${base ? `${round((r.totalCpuMsPerJob as number) / (base.totalCpuMsPerJob as number), 2)}×` : '—'} |`,
    ),
    '',
    `Unsaturated runs, the box with CPU to spare: ${pacedSeconds} s at each fixed rate of submissions (open loop, at most ${concurrency} out at once; jobs start at once), and ${queuedJobs} jobs at c=${concurrency} with every instance's nodes taking ${queuedNodeDelayMs} ms (jobs wait in the queue, as in front of real GPUs). Each cell: CPU per job of gateways + Redis, against SQLite in the same run; the rate reached; the gateways' involuntary context switches per job; Redis commands per job.`,
    '',
    `| setup | ${calmRuns(results[0] ?? { paced: [], queued: {} })
      .map(calmName)
      .join(' | ')} |`,
    `|---|${calmRuns(results[0] ?? { paced: [], queued: {} })
      .map(() => '---|')
      .join('')}`,
    ...results.map(
      (r) =>
        `| ${r.setup} | ${calmRuns(r)
          .map(
            (run) =>
              `${run.totalCpuMsPerJob} ms, ${n(calmRatio(run))}× (${run.jobsPerSecond}/s, ${run.involuntarySwitchesPerJob} preempted, ${n(run.redisCommandsPerJob)} cmds)`,
          )
          .join(' | ')} |`,
    ),
    '',
    `Load-independent figures (Redis setups): commands Redis ran per job (those inside scripts included) and request batches it read per job, at c=1 and at c=${concurrency}; bytes it sent to clients per job at c=${concurrency} (replies and pub/sub deliveries to every gateway); round trips on the c=1 critical path = p50 growth when every Redis reply is held ${delayMs} ms, over ${delaySamples} samples.`,
    '',
    '| setup | commands/job c=1 | batches/job c=1 | commands/job throughput | batches/job throughput | bytes out/job throughput | critical-path round trips |',
    '|---|---|---|---|---|---|---|',
    ...results
      .filter((r) => r.redisCommandsPerJobC1 !== null)
      .map(
        (r) =>
          `| ${r.setup} | ${n(r.redisCommandsPerJobC1)} | ${n(r.redisReadsPerJobC1)} | ${n(r.redisCommandsPerJobThroughput)} | ${n(r.redisReadsPerJobThroughput)} | ${n(r.redisOutBytesPerJobThroughput)} | ${n(r.criticalRoundTrips)} |`,
      ),
    '',
    `Gateway processes during the throughput run, per job (all gateways together): read- and write-like system calls (/proc/<pid>/io syscr + syscw) and context switches of their main threads (voluntary: waited for I/O; involuntary: preempted by another process on a busy box).`,
    '',
    '| setup | syscalls/job | voluntary switches/job | involuntary switches/job |',
    '|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.setup} | ${n(r.gatewaySyscallsPerJob)} | ${n(r.gatewayVoluntarySwitchesPerJob)} | ${n(r.gatewayInvoluntarySwitchesPerJob)} |`,
    ),
    '',
    'Targets (issue 17):',
    ...verdicts,
  ];
  return {
    data: {
      instances,
      samples,
      warmup,
      warmupJobs,
      jobs,
      concurrency,
      rates,
      pacedSeconds,
      queuedNodeDelayMs,
      queuedJobs,
      delayMs,
      delaySamples,
      loadAtStart,
      results,
    },
    summary: lines.join('\n'),
  };
}
