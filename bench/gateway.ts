// Gateway benchmark: the same zero-node-time prompt sent (a) straight to a simulator with the
// client SDK and (b) through the gateway's POST /prompt_sync, interleaved, for the gateway's
// overhead at concurrency 1; then jobs/s at concurrency 64 over 8 instances, SQLite writes per
// job, and RSS of the gateway process over many jobs.
// Three processes, like a deployment where ComfyUI runs elsewhere: the simulators (the
// `simulate` CLI), the gateway (this file re-run with --serve-gateway, reporting its own CPU,
// memory and store counters over IPC), and this process as the load generator. CPU per job is
// measured per process, so it does not depend on what else runs on the machine; jobs/s does.
// Options: --warmup N (rounds of both paths before measuring, default 2000), --samples N (c=1
// pairs, default 300), --jobs N (throughput run, default 5000),
// --concurrency N (default 64), --instances N (default 8), --rss-jobs N (default 50000),
// --store sqlite|memory (default sqlite), --log-level L (gateway LOG_LEVEL, default info, the
// gateway's default; logs go to a discarded stdout), --profile FILE (V8 CPU profile of the gateway over the
// throughput run, a .cpuprofile readable by Chrome DevTools), --profile-c1 FILE (the same over the
// concurrency-1 overhead run), --heap-profile FILE (sampled
// allocations of the gateway over the throughput run, collected objects included, .heapprofile).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent } from 'undici';
import type { ApiPrompt } from '../src/comfy/index.ts';
import { ComfyClient } from '../src/comfy/index.ts';
import {
  CHILD_TIMEOUT_MS,
  loads,
  machineTicks,
  percentile,
  procCpuMs,
  ROOT,
  round,
  startSimulatorProcess,
  stealPercent,
  stopChild,
  threadCpuMs,
} from './lib/measure.ts';
import { promptSync } from './lib/gateway.ts';
import type { BenchResult } from './run.ts';

export const description =
  'Gateway overhead vs direct SDK (c=1), jobs/s (c=64, 8 instances), CPU/job per process, SQLite writes/job, RSS';

const PROMPT: ApiPrompt = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 1234 } },
  '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
};

/** What the gateway child reports about itself. */
interface GatewayStats {
  cpuUs: number;
  sysUs: number;
  rss: number;
  heapUsed: number;
  writes: number;
  commits: number;
  /** Main-thread GC pauses so far (ms), minor (scavenge) and major (mark-compact) apart. */
  gcMinorMs: number;
  gcMajorMs: number;
  /** CPU ms per thread name (Linux: the main thread is "node", V8 helpers "V8 Worker"…). */
  threads: Record<string, number>;
}

type ChildMessage =
  | { type: 'ready'; url: string }
  | { type: 'stats'; stats: GatewayStats }
  | { type: 'profile'; written: string }
  | { type: 'error'; message: string };

/** Waits for the first child message matching `type`, bounded. */
function nextMessage<T extends ChildMessage['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`gateway child sent no "${type}" in time`)),
      CHILD_TIMEOUT_MS,
    );
    const onMessage = (msg: ChildMessage) => {
      if (msg.type === 'error') done(new Error(`gateway child: ${msg.message}`));
      else if (msg.type === type) done(null, msg as Extract<ChildMessage, { type: T }>);
    };
    const onExit = (code: number | null) => done(new Error(`gateway child exited with ${code}`));
    const done = (err: Error | null, msg?: Extract<ChildMessage, { type: T }>) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(msg as Extract<ChildMessage, { type: T }>);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Starts the gateway in a child process (this file with --serve-gateway); resolves with its URL. */
async function startGatewayProcess(
  urls: string[],
  dataDir: string,
  store: string,
  logLevel: string,
): Promise<{ url: string; child: ChildProcess }> {
  // BENCH_GATEWAY_ARGS: more Node options for the gateway only (as in bench/scale.ts), e.g. heap flags.
  const nodeArgs = process.env.BENCH_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...nodeArgs, fileURLToPath(import.meta.url), '--serve-gateway'],
    {
      cwd: ROOT,
      // Logs (stdout) are written and discarded, as a log shipper would take them; errors show.
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: {
        ...process.env,
        COMFYUI_URLS: urls.join(','),
        DATA_DIR: dataDir,
        JOB_STORE: store,
        MAX_QUEUE: '100000',
        LOG_LEVEL: logLevel,
      },
    },
  );
  const ready = await nextMessage(child, 'ready');
  return { url: ready.url, child };
}

/** The gateway's counters; with `gc`, memory is read after a full collection (what is really kept). */
async function stats(child: ChildProcess, gc = false): Promise<GatewayStats> {
  const reply = nextMessage(child, 'stats');
  child.send({ type: 'stats', gc });
  return (await reply).stats;
}

/** Runs the benchmark. */
export async function run(args: Record<string, string>): Promise<BenchResult> {
  const samples = Number(args.samples ?? 300);
  // A deployed gateway runs JIT-warm: 200 rounds left V8 still tiering up (c=1 overhead 0.96-1.22 ms
  // vs 0.75 ms after 2000 in one run), and both paths are warmed alike.
  const warmup = Number(args.warmup ?? 2000);
  const jobs = Number(args.jobs ?? 5000);
  const concurrency = Number(args.concurrency ?? 64);
  const instances = Number(args.instances ?? 8);
  const rssJobs = Number(args['rss-jobs'] ?? 50_000);
  const storeKind = args.store ?? 'sqlite';
  const profile = args.profile;
  const profileC1 = args['profile-c1'];
  const heapProfile = args['heap-profile'];
  // The gateway's own default: what a deployment pays for its logs.
  const logLevel = args['log-level'] ?? 'info';
  const loadAtStart = loads();
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-bench-'));
  const sim = await startSimulatorProcess(instances);
  let gateway: { url: string; child: ChildProcess } | null = null;
  const agent = new Agent({ connections: concurrency * 2, pipelining: 1 });
  const direct = new ComfyClient({ baseUrl: sim.urls[0] as string });
  try {
    gateway = await startGatewayProcess(sim.urls, dataDir, storeKind, logLevel);
    const gw = gateway;
    await direct.connect();
    const body = JSON.stringify({ prompt: PROMPT });
    const viaGateway = (): Promise<void> => promptSync(gw.url, body, agent);
    // Warm-up: JIT (both processes), connections, the instance's cache for this prompt.
    for (let i = 0; i < warmup; i++) {
      await direct.run(PROMPT);
      await viaGateway();
    }

    // (1) Overhead at concurrency 1, interleaved so drift hits both sides alike.
    // CPU is counted too: the SDK's own cost per run (the part of the gateway's work that is the
    // same client code) and the gateway process's cost per job without batching.
    const directMs: number[] = [];
    const gatewayMs: number[] = [];
    let sdkCpuUs = 0;
    const gwSerialBefore = await stats(gw.child);
    const ticksSerialBefore = machineTicks();
    if (profileC1) {
      const started = nextMessage(gw.child, 'profile');
      gw.child.send({ type: 'profile-start', cpu: true, heap: false });
      await started;
    }
    for (let i = 0; i < samples; i++) {
      let t = performance.now();
      const cpu = process.cpuUsage();
      await direct.run(PROMPT);
      const used = process.cpuUsage(cpu);
      sdkCpuUs += used.user + used.system;
      directMs.push(performance.now() - t);
      t = performance.now();
      await viaGateway();
      gatewayMs.push(performance.now() - t);
    }
    const gwSerialAfter = await stats(gw.child);
    const stealSerial = stealPercent(ticksSerialBefore, machineTicks());
    if (profileC1) {
      const written = nextMessage(gw.child, 'profile');
      gw.child.send({ type: 'profile-stop', path: profileC1 });
      await written;
    }
    const gatewayCpuMsPerJobC1 = (gwSerialAfter.cpuUs - gwSerialBefore.cpuUs) / 1000 / samples;
    const sdkCpuMsPerRun = sdkCpuUs / 1000 / samples;
    directMs.sort((a, b) => a - b);
    gatewayMs.sort((a, b) => a - b);
    const overheadP50 = percentile(gatewayMs, 50) - percentile(directMs, 50);
    const overheadP99 = percentile(gatewayMs, 99) - percentile(directMs, 99);

    // (2) Throughput at `concurrency` over all instances; CPU per job of each process.
    const load = async (count: number, onProgress?: (done: number) => Promise<void>): Promise<number> => {
      let next = 0;
      let done = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            next++;
            await viaGateway();
            done++;
            await onProgress?.(done);
          }
        }),
      );
      return performance.now() - t0;
    };
    const loadBeforeThroughput = loads();
    const gwBefore = await stats(gw.child);
    const ticksBefore = machineTicks();
    const simCpuBefore = procCpuMs(sim.child.pid === undefined ? undefined : `/proc/${sim.child.pid}/stat`);
    const genCpuBefore = process.cpuUsage();
    if (profile || heapProfile) {
      const started = nextMessage(gw.child, 'profile');
      gw.child.send({ type: 'profile-start', cpu: Boolean(profile), heap: Boolean(heapProfile) });
      await started;
    }
    const loadMs = await load(jobs);
    const genCpu = process.cpuUsage(genCpuBefore);
    const stealThroughput = stealPercent(ticksBefore, machineTicks());
    const simCpuAfter = procCpuMs(sim.child.pid === undefined ? undefined : `/proc/${sim.child.pid}/stat`);
    let profileWritten: string | null = null;
    if (profile || heapProfile) {
      const written = nextMessage(gw.child, 'profile');
      gw.child.send({ type: 'profile-stop', path: profile, heapPath: heapProfile });
      profileWritten = (await written).written;
    }
    const gwAfter = await stats(gw.child);
    const gatewayCpuMsPerJob = (gwAfter.cpuUs - gwBefore.cpuUs) / 1000 / jobs;
    const gatewaySysMsPerJob = (gwAfter.sysUs - gwBefore.sysUs) / 1000 / jobs;
    const generatorCpuMsPerJob = (genCpu.user + genCpu.system) / 1000 / jobs;
    const simulatorCpuMsPerJob =
      simCpuBefore !== null && simCpuAfter !== null ? (simCpuAfter - simCpuBefore) / jobs : null;
    const jobsPerSecond = jobs / (loadMs / 1000);
    const writesPerJob = (gwAfter.writes - gwBefore.writes) / jobs;
    const commitsPerJob = (gwAfter.commits - gwBefore.commits) / jobs;
    const gcMinorMsPerJob = (gwAfter.gcMinorMs - gwBefore.gcMinorMs) / jobs;
    const threadMsPerJob = Object.fromEntries(
      Object.entries(gwAfter.threads)
        .map(([name, ms]) => [name, round((ms - (gwBefore.threads[name] ?? 0)) / jobs, 3)] as const)
        .filter(([, ms]) => ms > 0),
    );
    const gcMajorMsPerJob = (gwAfter.gcMajorMs - gwBefore.gcMajorMs) / jobs;

    // (3) Gateway RSS over many jobs: sampled every 10% after a full GC (so the heap figure is what
    // is kept, not garbage V8 has not collected yet); the first half is warm-up.
    const rss: Array<{ jobs: number; rssMb: number; heapMb: number }> = [];
    const step = Math.max(1, Math.floor(rssJobs / 10));
    const rssMs = await load(rssJobs, async (done) => {
      if (done % step === 0) {
        const s = await stats(gw.child, true);
        rss.push({ jobs: done, rssMb: round(s.rss / 2 ** 20, 1), heapMb: round(s.heapUsed / 2 ** 20, 1) });
      }
    });
    const warm = rss[Math.floor(rss.length / 2) - 1] ?? rss[0];
    const last = rss.at(-1);
    const growth = warm && last ? round(last.rssMb - warm.rssMb, 1) : null;
    const heapGrowth = warm && last ? round(last.heapMb - warm.heapMb, 1) : null;
    const loadAtEnd = loads();

    const data = {
      processes:
        'simulators: one child process (simulate CLI); gateway: one child process; load generator + direct SDK client: the bench process; all on this machine',
      cpus: (await import('node:os')).availableParallelism(),
      loadavg_start: loadAtStart,
      loadavg_before_throughput: loadBeforeThroughput,
      loadavg_end: loadAtEnd,
      instances,
      concurrency,
      store: storeKind,
      log_level: logLevel,
      warmup,
      steal_percent_c1: stealSerial,
      steal_percent_throughput: stealThroughput,
      samples,
      direct_p50_ms: round(percentile(directMs, 50)),
      direct_p99_ms: round(percentile(directMs, 99)),
      gateway_p50_ms: round(percentile(gatewayMs, 50)),
      gateway_p99_ms: round(percentile(gatewayMs, 99)),
      overhead_p50_ms: round(overheadP50),
      overhead_p99_ms: round(overheadP99),
      gateway_cpu_ms_per_job_c1: round(gatewayCpuMsPerJobC1, 3),
      sdk_client_cpu_ms_per_run_c1: round(sdkCpuMsPerRun, 3),
      throughput_jobs: jobs,
      jobs_per_second: round(jobsPerSecond, 1),
      gateway_cpu_ms_per_job: round(gatewayCpuMsPerJob, 3),
      gateway_cpu_system_ms_per_job: round(gatewaySysMsPerJob, 3),
      gateway_cpu_bound_jobs_per_second: round(1000 / gatewayCpuMsPerJob, 0),
      gateway_thread_cpu_ms_per_job: threadMsPerJob,
      gateway_gc_pause_ms_per_job: { minor: round(gcMinorMsPerJob, 4), major: round(gcMajorMsPerJob, 4) },
      generator_cpu_ms_per_job: round(generatorCpuMsPerJob, 3),
      simulator_cpu_ms_per_job: simulatorCpuMsPerJob === null ? null : round(simulatorCpuMsPerJob, 3),
      sqlite_writes_per_job: round(writesPerJob, 2),
      sqlite_commits_per_job: round(commitsPerJob, 3),
      rss_jobs: rssJobs,
      rss_jobs_per_second: round(rssJobs / (rssMs / 1000), 1),
      rss_samples: rss,
      rss_growth_second_half_mb: growth,
      heap_after_gc_growth_second_half_mb: heapGrowth,
      profile: profileWritten,
    };
    const summary = [
      `Processes: simulators (${instances} instances, one child), gateway (one child, LOG_LEVEL=${logLevel}${process.env.BENCH_GATEWAY_ARGS ? `, Node options ${process.env.BENCH_GATEWAY_ARGS}` : ''}), load generator (this process); ${data.cpus} CPUs; ${warmup} warm-up rounds; loadavg ${loadAtStart.join('/')} at start, ${loadBeforeThroughput.join('/')} before the throughput run, ${loadAtEnd.join('/')} at end; CPU stolen by the hypervisor ${stealSerial ?? '?'} % during the c=1 run, ${stealThroughput ?? '?'} % during the throughput run.`,
      '',
      `| metric | value | target |`,
      `|---|---|---|`,
      `| overhead p50 (c=1) | ${data.overhead_p50_ms} ms (gateway ${data.gateway_p50_ms} vs direct ${data.direct_p50_ms}) | ≤ 1 ms |`,
      `| overhead p99 (c=1) | ${data.overhead_p99_ms} ms (gateway ${data.gateway_p99_ms} vs direct ${data.direct_p99_ms}) | ≤ 5 ms |`,
      `| CPU per job at c=1: gateway process / the SDK alone (direct run, bench process) | ${data.gateway_cpu_ms_per_job_c1} ms / ${data.sdk_client_cpu_ms_per_run_c1} ms | — |`,
      `| throughput (c=${concurrency}, ${instances} instances, all processes on this box) | ${data.jobs_per_second} jobs/s | ≥ 1000 |`,
      `| gateway process CPU per job | ${data.gateway_cpu_ms_per_job} ms, ${data.gateway_cpu_system_ms_per_job} ms of it in the kernel (= ${data.gateway_cpu_bound_jobs_per_second} jobs/s per gateway core) | — |`,
      `| gateway CPU per job by thread | ${Object.entries(threadMsPerJob)
        .map(([name, ms]) => `${name} ${ms} ms`)
        .join(', ')} | — |`,
      `| gateway GC pauses per job (main thread) | ${data.gateway_gc_pause_ms_per_job.minor} ms minor, ${data.gateway_gc_pause_ms_per_job.major} ms major | — |`,
      `| load generator / simulator CPU per job | ${data.generator_cpu_ms_per_job} ms / ${data.simulator_cpu_ms_per_job ?? '?'} ms | — |`,
      `| ${storeKind} row writes per job | ${data.sqlite_writes_per_job} (${data.sqlite_commits_per_job} commits/job, group commit) | small |`,
      `| gateway RSS after ${rssJobs} jobs (read after a full GC) | ${last?.rssMb ?? '?'} MB (${growth} MB change over the second half); heap ${last?.heapMb ?? '?'} MB (${heapGrowth} MB change) | flat |`,
    ].join('\n');
    return { data, summary };
  } finally {
    await direct.close();
    await agent.close();
    if (gateway) await stopChild(gateway.child);
    await stopChild(sim.child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Child mode: runs the gateway from env settings and answers stats/profile requests over IPC. */
async function serveGateway(): Promise<void> {
  const send = (msg: ChildMessage) => process.send?.(msg);
  try {
    const [{ loadConfig }, { startGateway }, pino, { Session }] = await Promise.all([
      import('../src/config.ts'),
      import('../src/server/index.ts'),
      import('pino'),
      import('node:inspector/promises'),
    ]);
    const config = loadConfig(process.env);
    const gateway = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
      logger: pino.default({ level: config.logLevel, base: { service: 'comfy-gateway' } }),
    });
    const session = new Session();
    const gc = { minor: 0, major: 0 };
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
        if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor += entry.duration;
        else gc.major += entry.duration;
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    process.on(
      'message',
      async (msg: {
        type: string;
        gc?: boolean;
        cpu?: boolean;
        heap?: boolean;
        path?: string;
        heapPath?: string;
      }) => {
        try {
          if (msg.type === 'stats') {
            if (msg.gc) (globalThis as { gc?: () => void }).gc?.();
            const cpu = process.cpuUsage();
            const mem = process.memoryUsage();
            send({
              type: 'stats',
              stats: {
                cpuUs: cpu.user + cpu.system,
                sysUs: cpu.system,
                rss: mem.rss,
                heapUsed: mem.heapUsed,
                writes: gateway.manager.storeWrites,
                commits: gateway.manager.storeCommits ?? 0,
                gcMinorMs: gc.minor,
                gcMajorMs: gc.major,
                threads: threadCpuMs(),
              },
            });
          } else if (msg.type === 'profile-start') {
            session.connect();
            if (msg.cpu) {
              await session.post('Profiler.enable');
              await session.post('Profiler.setSamplingInterval', { interval: 200 });
              await session.post('Profiler.start');
            }
            if (msg.heap) {
              await session.post('HeapProfiler.enable');
              await session.post('HeapProfiler.startSampling', {
                samplingInterval: 16_384,
                includeObjectsCollectedByMajorGC: true,
                includeObjectsCollectedByMinorGC: true,
              });
            }
            send({ type: 'profile', written: '' });
          } else if (msg.type === 'profile-stop') {
            const written: string[] = [];
            if (msg.path) {
              const { profile } = await session.post('Profiler.stop');
              await writeFile(msg.path, JSON.stringify(profile));
              written.push(msg.path);
            }
            if (msg.heapPath) {
              const { profile } = await session.post('HeapProfiler.stopSampling');
              await writeFile(msg.heapPath, JSON.stringify(profile));
              written.push(msg.heapPath);
            }
            session.disconnect();
            send({ type: 'profile', written: written.join(', ') });
          }
        } catch (err) {
          send({ type: 'error', message: String(err) });
        }
      },
    );
    process.once('SIGTERM', () => {
      void gateway.close().finally(() => process.exit(0));
    });
    send({ type: 'ready', url: gateway.url });
  } catch (err) {
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--serve-gateway' && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void serveGateway();
}
