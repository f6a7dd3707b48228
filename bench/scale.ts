// Scale benchmark (issue 19): what one gateway costs to start and to keep, and how wide it goes.
// Phases (--phases, comma list; default all):
//   startup  `serve` to a 200 from /ready (two instances answering) vs a bare Fastify app with one route
//            to its first 200, alternated over --rounds (default 5) with a fresh compile cache for both
//            (wall-clock time, and each process's CPU time when /ready answered); idle RSS of the
//            gateway after start-up. `--sources 1` adds the same gateway run from the TypeScript
//            sources to every round (COMFY_GATEWAY_SOURCES=1), for a same-run comparison.
//   idle     RSS per 1,000 retained finished jobs, per 1,000 idle SSE streams and per 1,000 idle facade
//            WebSockets (read after a full GC in the gateway).
//   wide     one gateway over 256 simulated instances (4 simulator processes): c=1 overhead vs the same
//            gateway over 8 of them (2 per process; the direct runs rotate over those 8), gateway CPU
//            per job at c=1, idle CPU of health checks and WebSockets, RSS, and half the instances
//            killed and restarted twice (CPU, file descriptors, /health while they flap).
//   clients  10,000 `?wait` clients + 1,000 SSE clients, each submitting again as soon as answered, +
//            1,000 facade WebSockets: clients arrive over --ramp s (default 5), hold on for --steady s
//            (default 20), then the queue drains. Jobs flow at the instances' pace (--instances, default
//            10, one slot each, 2 × 8 ms nodes, distinct inputs so nothing is cached: ~500 jobs/s). Errors by kind,
//            RSS, event-loop delay, /health latency from a separate process (on the API port and on
//            HEALTH_PORT), and the duration of each synchronous SQLite statement, SQLite transaction and
//            JSON parse/stringify in the gateway.
// Every gateway is the real `serve` command (bin/comfy-gateway.js: the bundle when it is current, which
// the report says) with bench/lib/probe.js loaded for its own readings.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { staleReason } from '../bin/bundle.js';
import { ComfyClient } from '../src/comfy/index.ts';
import {
  CHILD_TIMEOUT_MS,
  childCpuMs,
  freePort,
  freePortRange,
  loads,
  openFds,
  percentile,
  ROOT,
  round,
  rssMiB,
  startSimulatorProcess,
  stopChild,
} from './lib/measure.ts';
import { promptSync } from './lib/gateway.ts';
import type { ProbeReading, SyncStats } from './lib/probe.ts';
import type { BenchResult } from './run.ts';

export const description =
  'Start-up vs bare Fastify, idle RSS, 256 instances, 10,000 waiting clients (issue 19 targets)';

const PROMPT = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 4321 } },
  '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
};

/** A gateway child process with its probe. */
interface GatewayProcess {
  url: string;
  child: ChildProcess;
  dataDir: string;
}

/** Spawns `serve` with the probe; resolves once /ready answers 200, with the time that took. */
async function startGateway(
  env: Record<string, string>,
  options: { readyTimeoutMs?: number; waitReady?: boolean } = {},
): Promise<GatewayProcess & { readyMs: number; readyCpuMs: number | null }> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-scale-'));
  // BENCH_GATEWAY_STDOUT=<file>: the gateways' stdout (e.g. V8's --trace-gc lines) appended there.
  const stdout = process.env.BENCH_GATEWAY_STDOUT
    ? openSync(process.env.BENCH_GATEWAY_STDOUT, 'a')
    : 'ignore';
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    // The command as installed: the bundled build when it is current (`npm run build`), else the sources.
    [
      '--expose-gc',
      // BENCH_CPU_PROF=<dir>: a V8 CPU profile of each gateway, written there when it exits.
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      // BENCH_GATEWAY_ARGS: more Node options for the gateways only (e.g. --max-semi-space-size=4).
      ...(process.env.BENCH_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? []),
      '--import',
      './bench/lib/probe.js',
      'bin/comfy-gateway.js',
      'serve',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', stdout, 'inherit', 'ipc'],
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        MAX_QUEUE: '100000',
        ...env,
      },
    },
  );
  if (typeof stdout === 'number') closeSync(stdout);
  const url = `http://127.0.0.1:${port}`;
  // Without instances answering, /ready stays 503: then any answer from /health means it listens.
  const listening = options.waitReady === false;
  await waitForAnswer(
    `${url}${listening ? '/health' : '/ready'}`,
    child,
    options.readyTimeoutMs ?? CHILD_TIMEOUT_MS,
    listening,
  );
  return { url, child, dataDir, readyMs: performance.now() - t0, readyCpuMs: childCpuMs(child) };
}

/** Polls a URL every 5 ms until it answers 200, or anything with `anyStatus` (bounded; fails early when the child exits). */
async function waitForAnswer(
  url: string,
  child: ChildProcess,
  timeoutMs: number,
  anyStatus = false,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`process exited with ${child.exitCode} before ${url} answered`);
    try {
      const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (anyStatus || res.statusCode === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(5);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Asks a gateway's probe for its readings (after a full GC with `gc`; resets the delay histogram with `reset`). */
function probe(child: ChildProcess, options: { gc?: boolean; reset?: boolean } = {}): Promise<ProbeReading> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('probe did not answer')), CHILD_TIMEOUT_MS);
    const onMessage = (msg: { type?: string; reading?: ProbeReading }) => {
      if (msg.type === 'probe' && msg.reading) done(null, msg.reading);
    };
    const done = (err: Error | null, reading?: ProbeReading) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      if (err) reject(err);
      else resolve(reading as ProbeReading);
    };
    child.on('message', onMessage);
    child.send({ type: 'probe', ...options });
  });
}

async function stopGateway(gateway: GatewayProcess): Promise<void> {
  await stopChild(gateway.child);
  await rm(gateway.dataDir, { recursive: true, force: true });
}

/** Spawns a bare Fastify app with one route; resolves with the time to its first 200 and its CPU time then. */
async function bareFastifyReady(env: Record<string, string>): Promise<{ ms: number; cpuMs: number | null }> {
  const port = await freePort();
  const script = `import Fastify from 'fastify';
const app = Fastify();
app.get('/ready', async () => ({ ready: true }));
await app.listen({ port: ${port}, host: '127.0.0.1' });`;
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...env },
  });
  try {
    await waitForAnswer(`http://127.0.0.1:${port}/ready`, child, CHILD_TIMEOUT_MS);
    return { ms: performance.now() - t0, cpuMs: childCpuMs(child) };
  } finally {
    await stopChild(child);
  }
}

/** `count` POSTs of the benchmark prompt through /prompt_sync at `concurrency`; returns per-call ms. */
async function promptSyncCalls(url: string, agent: Agent, count: number, concurrency = 1): Promise<number[]> {
  const body = JSON.stringify({ prompt: PROMPT });
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const t = performance.now();
        await promptSync(url, body, agent);
        times.push(performance.now() - t);
      }
    }),
  );
  return times;
}

async function startupPhase(
  rounds: number,
  instanceUrls: string[],
  withSources: boolean,
): Promise<Record<string, unknown>> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'gw-scale-cc-'));
  const env = { NODE_COMPILE_CACHE: cacheDir };
  const bare: number[] = [];
  const gateway: number[] = [];
  // CPU time (all threads) each process had used when /ready answered: less sensitive to a loaded box
  // than wall-clock time.
  const bareCpu: number[] = [];
  const gatewayCpu: number[] = [];
  // With --sources 1, a third process per round: the same gateway from the TypeScript sources.
  const sources: number[] = [];
  let idle: Record<string, unknown> = {};
  try {
    for (let i = 0; i < rounds; i++) {
      const b = await bareFastifyReady(env);
      bare.push(b.ms);
      if (b.cpuMs !== null) bareCpu.push(b.cpuMs);
      const gw = await startGateway({ ...env, COMFYUI_URLS: instanceUrls.join(',') });
      gateway.push(gw.readyMs);
      if (gw.readyCpuMs !== null) gatewayCpu.push(gw.readyCpuMs);
      if (withSources) {
        const src = await startGateway({
          ...env,
          COMFYUI_URLS: instanceUrls.join(','),
          COMFY_GATEWAY_SOURCES: '1',
        });
        sources.push(src.readyMs);
        await stopGateway(src);
      }
      if (i === rounds - 1) {
        await sleep(3000);
        const after = await probe(gw.child, { gc: true });
        idle = { rss_mib: rssMiB(gw.child.pid), rss_after_gc_mib: after.rssMiB, heap_mib: after.heapMiB };
      }
      await stopGateway(gw);
    }
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
  // Round 1 fills the compile cache for both; later rounds are what a restart costs.
  const warmBare = bare.slice(1).sort((a, b) => a - b);
  const warmGateway = gateway.slice(1).sort((a, b) => a - b);
  const bareMs = percentile(warmBare, 50);
  const gatewayMs = percentile(warmGateway, 50);
  const warmBareCpu = bareCpu.slice(1).sort((a, b) => a - b);
  const warmGatewayCpu = gatewayCpu.slice(1).sort((a, b) => a - b);
  return {
    rounds,
    bare_fastify_ready_ms: bare.map((n) => round(n, 0)),
    gateway_ready_ms: gateway.map((n) => round(n, 0)),
    bare_fastify_ready_p50_ms_warm: round(bareMs, 0),
    gateway_ready_p50_ms_warm: round(gatewayMs, 0),
    ratio_warm: round(gatewayMs / bareMs, 2),
    ratio_cold: round((gateway[0] ?? 0) / (bare[0] ?? 1), 2),
    bare_fastify_cpu_ms_at_ready: bareCpu,
    gateway_cpu_ms_at_ready: gatewayCpu,
    cpu_ratio_warm:
      warmBareCpu.length > 0 && warmGatewayCpu.length > 0
        ? round(percentile(warmGatewayCpu, 50) / percentile(warmBareCpu, 50), 2)
        : null,
    ...(withSources
      ? {
          sources_ready_ms: sources.map((n) => round(n, 0)),
          sources_ratio_warm: round(
            percentile(
              sources.slice(1).sort((a, b) => a - b),
              50,
            ) / bareMs,
            2,
          ),
        }
      : {}),
    idle,
  };
}

async function idlePhase(instanceUrls: string[]): Promise<Record<string, unknown>> {
  // Retained finished jobs, on a gateway with working instances.
  const gw = await startGateway({ COMFYUI_URLS: instanceUrls.join(','), MAX_SSE_STREAMS: '5000' });
  const agent = new Agent({ connections: 64 });
  const out: Record<string, unknown> = {};
  try {
    await promptSyncCalls(gw.url, agent, 200, 16); // warm-up
    const before = await probe(gw.child, { gc: true });
    await promptSyncCalls(gw.url, agent, 1000, 32);
    const after = await probe(gw.child, { gc: true });
    out.rss_mib_per_1000_retained_jobs = after.rssMiB - before.rssMiB;
    out.heap_mib_per_1000_retained_jobs = after.heapMiB - before.heapMiB;
  } finally {
    await agent.close();
    await stopGateway(gw);
  }
  // Idle SSE streams and WebSockets, on a gateway whose only instance is down: the job stays queued and
  // its event stream open.
  const deadUrl = `http://127.0.0.1:${await freePort()}`;
  const idle = await startGateway({ COMFYUI_URLS: deadUrl, MAX_SSE_STREAMS: '5000' }, { waitReady: false });
  const sseAgent = new Agent({ connections: 1100 });
  const sockets: WebSocket[] = [];
  try {
    const res = await request(`${idle.url}/api/v2/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: PROMPT }),
    });
    const job = (await res.body.json()) as { id: string };
    const before = await probe(idle.child, { gc: true });
    const streams = await Promise.all(
      Array.from({ length: 1000 }, () =>
        request(`${idle.url}/api/v2/jobs/${job.id}/events`, { dispatcher: sseAgent, bodyTimeout: 0 }),
      ),
    );
    const withSse = await probe(idle.child, { gc: true });
    for (let i = 0; i < 1000; i++)
      sockets.push(await openSocket(`${idle.url.replace('http', 'ws')}/ws?clientId=idle-${i}`));
    const withWs = await probe(idle.child, { gc: true });
    out.sse_status = streams.every((s) => s.statusCode === 200) ? 'all 200' : 'some refused';
    out.rss_mib_per_1000_idle_sse = withSse.rssMiB - before.rssMiB;
    out.rss_mib_per_1000_idle_websockets = withWs.rssMiB - withSse.rssMiB;
    for (const s of streams) s.body.destroy();
  } finally {
    for (const s of sockets) s.terminate();
    await sseAgent.destroy();
    await stopGateway(idle);
  }
  return out;
}

/** Opens a WebSocket and waits for its first message (the facade's status), bounded. */
function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no message from ${url}`));
    }, CHILD_TIMEOUT_MS);
    ws.once('message', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Gateway latency and overhead over direct SDK runs at c=1, interleaved (like bench/gateway.ts). The
 * direct runs rotate over `directUrls` (spread over every simulator process, as the gateway's jobs
 * are), and the gateway's CPU per job is read from /proc (a figure the box's load barely moves).
 */
async function overheadC1(
  gateway: GatewayProcess,
  directUrls: string[],
  samples: number,
  warmup: number,
): Promise<{
  gateway_p50_ms: number;
  direct_p50_ms: number;
  overhead_p50_ms: number;
  gateway_cpu_ms_per_job: number | null;
}> {
  const agent = new Agent({ connections: 4 });
  const direct = directUrls.map((baseUrl) => new ComfyClient({ baseUrl }));
  let turn = 0;
  const runDirect = () => (direct[turn++ % direct.length] as ComfyClient).run(PROMPT);
  try {
    await Promise.all(direct.map((c) => c.connect()));
    for (let i = 0; i < warmup; i++) {
      await runDirect();
      await promptSyncCalls(gateway.url, agent, 1);
    }
    const gw: number[] = [];
    const dir: number[] = [];
    let cpuMs = 0;
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      await runDirect();
      dir.push(performance.now() - t);
      const cpu0 = childCpuMs(gateway.child) ?? Number.NaN;
      gw.push(...(await promptSyncCalls(gateway.url, agent, 1)));
      cpuMs += (childCpuMs(gateway.child) ?? Number.NaN) - cpu0;
    }
    gw.sort((a, b) => a - b);
    dir.sort((a, b) => a - b);
    return {
      gateway_p50_ms: round(percentile(gw, 50)),
      direct_p50_ms: round(percentile(dir, 50)),
      overhead_p50_ms: round(percentile(gw, 50) - percentile(dir, 50)),
      gateway_cpu_ms_per_job: Number.isNaN(cpuMs) ? null : round(cpuMs / samples, 3),
    };
  } finally {
    await Promise.all(direct.map((c) => c.close()));
    await agent.close();
  }
}

/** Gateway CPU as % of one core over `ms`. */
async function cpuPercent(child: ChildProcess, ms: number): Promise<number | null> {
  const before = childCpuMs(child);
  await sleep(ms);
  const after = childCpuMs(child);
  return before === null || after === null ? null : round((100 * (after - before)) / ms, 2);
}

/** Memory figures of a reading taken after a full GC. */
function gcFigures(r: ProbeReading): Record<string, number> {
  return {
    rss_mib: r.rssMiB,
    heap_mib: r.heapMiB,
    heap_total_mib: r.heapTotalMiB,
    external_mib: r.externalMiB,
  };
}

async function widePhase(samples: number, warmup: number): Promise<Record<string, unknown>> {
  const perProcess = 64;
  const sims: Array<{ urls: string[]; child: ChildProcess; port: number }> = [];
  const out: Record<string, unknown> = {};
  try {
    // Explicit consecutive ports (the simulator numbers its instances from --port), so a killed
    // process can be restarted on the same ones.
    let from = 41_000;
    for (let i = 0; i < 4; i++) {
      const port = await freePortRange(perProcess, from);
      from = port + perProcess + 7;
      const sim = await startSimulatorProcess(perProcess, { port });
      sims.push({ ...sim, port });
    }
    const all = sims.flatMap((s) => s.urls);
    // Two instances of each simulator process: the 256-instance gateway's jobs go round all four
    // processes, so the 8-instance one's (and the direct runs') must too, or the ratio compares
    // one warm simulator process with four.
    const eight = sims.flatMap((s) => s.urls.slice(0, 2));
    const small = await startGateway({ COMFYUI_URLS: eight.join(','), HEALTH_CHECK_INTERVAL_MS: '30000' });
    try {
      out.eight = await overheadC1(small, eight, samples, warmup);
    } finally {
      await stopGateway(small);
    }
    const wide = await startGateway({ COMFYUI_URLS: all.join(','), HEALTH_CHECK_INTERVAL_MS: '30000' });
    try {
      out.ready_ms_256 = round(wide.readyMs, 0);
      out.wide = await overheadC1(wide, eight, samples, warmup);
      out.cpu_per_job_ratio_256_vs_8 = round(
        ((out.wide as { gateway_cpu_ms_per_job: number }).gateway_cpu_ms_per_job ?? Number.NaN) /
          ((out.eight as { gateway_cpu_ms_per_job: number }).gateway_cpu_ms_per_job ?? Number.NaN),
        2,
      );
      out.overhead_ratio_256_vs_8 = round(
        (out.wide as { overhead_p50_ms: number }).overhead_p50_ms /
          (out.eight as { overhead_p50_ms: number }).overhead_p50_ms,
        2,
      );
      await sleep(2000);
      out.idle_cpu_percent_of_core_60s = await cpuPercent(wide.child, 60_000);
      out.rss_mib_256 = rssMiB(wide.child.pid);
      // After a full GC: what the gateway holds, as against garbage not collected yet.
      const held = await probe(wide.child, { gc: true });
      out.after_gc_256 = gcFigures(held);
      out.fds_256 = openFds(wide.child.pid);
      // Half the instances flap: two simulator processes killed, restarted on the same ports, twice.
      const flapCpu: Array<number | null> = [];
      const healthMs: number[] = [];
      let maxFds = 0;
      const watch = setInterval(() => {
        maxFds = Math.max(maxFds, openFds(wide.child.pid) ?? 0);
        const t = performance.now();
        request(`${wide.url}/health`, { headersTimeout: 5000 })
          .then((r) => r.body.dump())
          .then(
            () => healthMs.push(performance.now() - t),
            () => healthMs.push(5000),
          );
      }, 250);
      try {
        for (let cycle = 0; cycle < 2; cycle++) {
          const down = sims.slice(2);
          for (const s of down) s.child.kill('SIGKILL');
          flapCpu.push(await cpuPercent(wide.child, 15_000));
          for (const s of down) {
            const restarted = await startSimulatorProcess(perProcess, { port: s.port });
            s.child = restarted.child;
          }
          flapCpu.push(await cpuPercent(wide.child, 15_000));
        }
      } finally {
        clearInterval(watch);
      }
      healthMs.sort((a, b) => a - b);
      out.flap = {
        gateway_cpu_percent_per_15s: flapCpu,
        max_fds: maxFds,
        health_p50_ms: round(percentile(healthMs, 50), 1),
        health_max_ms: round(healthMs.at(-1) ?? Number.NaN, 1),
        rss_mib_after: rssMiB(wide.child.pid),
        after_gc: gcFigures(await probe(wide.child, { gc: true })),
      };
    } finally {
      await stopGateway(wide);
    }
  } finally {
    for (const s of sims) await stopChild(s.child);
  }
  return out;
}

/**
 * A separate light process that GETs each URL every 100 ms on a new connection (as an orchestrator's
 * probe does) and reports the latencies when told to stop. Not a thread of the bench: the bench itself
 * holds 12,000 connections, and a probe sharing its process (and CPU) would measure the bench.
 */
/** One prober's readings: each probe's total time and its connect time, in ms. */
interface ProbeTimes {
  times: number[];
  connects: number[];
}

function healthProber(urls: string[]): {
  stop: () => Promise<{ probes: ProbeTimes[]; ownDelay: { p99: number; max: number } }>;
} {
  // Each probe's total time and the time its TCP connection took: a connect of a second or more is a
  // SYN sent again after the kernel dropped it (a full accept queue), the rest is the gateway's answer.
  const script = `const http = require('node:http');
const { monitorEventLoopDelay } = require('node:perf_hooks');
// The prober's own lateness: a probe answered on time but read late is the prober's, not the gateway's.
const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();
const times = process.argv.slice(1).map(() => []);
const connects = process.argv.slice(1).map(() => []);
let stopped = false;
process.on('message', () => { stopped = true; });
const get = (url) => new Promise((resolve) => {
  const t = performance.now();
  let connected = 5000;
  const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
    res.resume();
    res.on('end', () => resolve([performance.now() - t, connected]));
  });
  req.on('socket', (socket) => socket.once('connect', () => { connected = performance.now() - t; }));
  req.on('timeout', () => req.destroy());
  req.on('error', () => resolve([5000, connected]));
});
(async () => {
  while (!stopped) {
    const t = await Promise.all(process.argv.slice(1).map(get));
    t.forEach(([ms, connect], i) => { times[i].push(ms); connects[i].push(connect); });
    await new Promise((r) => setTimeout(r, 100));
  }
  const ownDelay = { p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 };
  process.send({ times, connects, ownDelay }, () => process.exit(0));
})();`;
  const child = spawn(process.execPath, ['-e', script, ...urls], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('health prober did not answer')), CHILD_TIMEOUT_MS);
        child.once(
          'message',
          (msg: { times: number[][]; connects: number[][]; ownDelay: { p99: number; max: number } }) => {
            clearTimeout(timer);
            resolve({
              probes: msg.times.map((times, i) => ({ times, connects: msg.connects[i] ?? [] })),
              ownDelay: msg.ownDelay,
            });
          },
        );
        child.send('stop');
      }),
  };
}

/** p50/p99/max and the count over 50 ms of one prober's latencies, and of their connect times. */
function healthStats({ times, connects }: ProbeTimes): Record<string, number> {
  const sorted = [...times].sort((a, b) => a - b);
  const connect = [...connects].sort((a, b) => a - b);
  return {
    probes: sorted.length,
    p50_ms: round(percentile(sorted, 50), 1),
    p99_ms: round(percentile(sorted, 99), 1),
    max_ms: round(sorted.at(-1) ?? Number.NaN, 1),
    over_50ms: sorted.filter((t) => t > 50).length,
    connect_p99_ms: round(percentile(connect, 99), 1),
    connect_max_ms: round(connect.at(-1) ?? Number.NaN, 1),
    connects_over_1s: connect.filter((t) => t >= 1000).length,
  };
}

/** The machine's count of connections dropped because a listener's accept queue was full (Linux). */
function listenOverflows(): number | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const i = names.indexOf('ListenOverflows');
    return i > 0 ? Number(values[i]) : null;
  } catch {
    return null;
  }
}

/**
 * Samples the accept queue of the listener on `port` (connections the kernel completed and the
 * gateway has not accepted yet: `ss`'s Recv-Q) every 250 ms; resolves with the samples on stop.
 */
function acceptQueueSampler(port: number): { stop: () => { depths: number[]; backlog: number | null } } {
  const depths: number[] = [];
  let backlog: number | null = null;
  const timer = setInterval(() => {
    execFile('ss', ['-ltnH', `sport = :${port}`], { timeout: 1000 }, (err, out) => {
      // A listening socket's line: state, Recv-Q (queued connections), Send-Q (the backlog), …
      const [, depth, limit] = err ? [] : out.trim().split(/\s+/).map(Number);
      if (depth !== undefined && Number.isFinite(depth)) depths.push(depth);
      if (limit !== undefined && Number.isFinite(limit)) backlog = limit;
    });
  }, 250);
  return {
    stop: () => {
      clearInterval(timer);
      return { depths, backlog };
    },
  };
}

/**
 * Target 4 as a steady state, not one burst: `waiters` clients each hold a `?wait` request open and
 * submit the next as soon as theirs is answered, and `sse` clients each submit a job and follow its
 * event stream, again and again; `sockets` facade WebSockets stay open throughout. Clients arrive
 * evenly over `rampS` seconds, keep going for `steadyS` seconds, then stop submitting and the queue
 * drains. Every job has its own input (no cache hit on the simulator), so each takes 2 × 8 ms on one
 * of `instances` single-slot instances: jobs flow at the instances' pace (10 of them: ~500 jobs/s with
 * the gateway's turnaround), not as fast as the gateway can take them. /health is probed every 100 ms from a separate process during all of it.
 */
async function clientsPhase(
  waiters: number,
  sse: number,
  sockets: number,
  rampS: number,
  steadyS: number,
  instances: number,
): Promise<Record<string, unknown>> {
  const { urls, child: sim } = await startSimulatorProcess(instances, {
    port: await freePortRange(instances),
    nodeDelayMs: 8,
  });
  const healthPort = await freePort();
  const gw = await startGateway({
    COMFYUI_URLS: urls.join(','),
    MAX_JOBS_PER_INSTANCE: '1',
    MAX_SSE_STREAMS: String(sse + 100),
    HEALTH_PORT: String(healthPort),
  });
  const agent = new Agent({
    connections: waiters + sse + 100,
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  });
  const sockets_: WebSocket[] = [];
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  const rss: number[] = [];
  const inFlight: number[] = [];
  try {
    for (let i = 0; i < sockets; i++)
      sockets_.push(await openSocket(`${gw.url.replace('http', 'ws')}/ws?clientId=client-${i}`));
    await probe(gw.child, { reset: true });
    const cpu0 = childCpuMs(gw.child);
    const prober = healthProber([`${gw.url}/health`, `http://127.0.0.1:${healthPort}/health`]);
    const acceptQueue = acceptQueueSampler(Number(new URL(gw.url).port));
    const overflows0 = listenOverflows();
    let waiting = 0;
    const sampler = setInterval(() => {
      rss.push(rssMiB(gw.child.pid) ?? 0);
      inFlight.push(waiting);
    }, 500);
    const t0 = performance.now();
    // Moved to the ramp's actual end once every client has arrived.
    let steadyFrom = Number.POSITIVE_INFINITY;
    let stopAt = Number.POSITIVE_INFINITY;
    let jobs = 0;
    let doneInSteady = 0;
    const finished = () => {
      const now = performance.now();
      if (now >= steadyFrom && now < stopAt) doneInSteady++;
    };
    // Every failure is counted by kind: which request, and the HTTP status + error code, the job's
    // final status, or the client-side error code (connect timeouts, resets) it ended with.
    const fail = (kind: string) => {
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    };
    const clientError = (what: string) => (err: unknown) =>
      fail(`${what}: ${(err as { code?: string }).code ?? (err as Error).message}`);
    const submit = async (wait: boolean): Promise<{ id?: string } | null> => {
      const what = wait ? 'wait' : 'submit';
      const n = jobs++;
      const prompt = { ...PROMPT, '1': { ...PROMPT['1'], inputs: { ...PROMPT['1'].inputs, color: n } } };
      try {
        const res = await request(`${gw.url}/api/v2/jobs${wait ? '?wait=300' : ''}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ workflow: prompt }),
          dispatcher: agent,
        });
        const job = (await res.body.json()) as { id?: string; status?: string; error?: { code?: string } };
        if (res.statusCode !== 200 && res.statusCode !== 201) {
          fail(`${what}: HTTP ${res.statusCode} ${job.error?.code ?? ''}`.trim());
          return null;
        }
        if (wait && job.status !== 'succeeded') fail(`wait: ended ${job.status}`);
        return job;
      } catch (err) {
        clientError(what)(err);
        return null;
      }
    };
    const waiter = async () => {
      do {
        waiting++;
        await submit(true);
        waiting--;
        finished();
      } while (performance.now() < stopAt);
    };
    // SSE streams on jobs queued behind the waiters: open while the job waits and runs.
    const streamer = async () => {
      do {
        const job = await submit(false);
        if (job?.id === undefined) continue;
        try {
          const res = await request(`${gw.url}/api/v2/jobs/${job.id}/events`, { dispatcher: agent });
          if (res.statusCode !== 200) fail(`sse: HTTP ${res.statusCode}`);
          const text = await res.body.text();
          if (res.statusCode === 200 && !text.includes('succeeded')) fail('sse: no succeeded event');
        } catch (err) {
          clientError('sse')(err);
        }
        finished();
      } while (performance.now() < stopAt);
    };
    // Arrivals spread evenly over the ramp, waiters and streams interleaved: a fixed number per 10 ms
    // tick. A late tick does not catch up with a burst (independent clients would not), it stretches
    // the ramp, which is reported.
    const clients: Array<Promise<void>> = [];
    const total = waiters + sse;
    const every = Math.max(1, Math.floor(total / Math.max(1, sse)));
    const perTick = total / Math.max(1, rampS * 100);
    let streamers = 0;
    let due = 0;
    for (let i = 0; i < total; ) {
      due += perTick;
      for (; i < Math.min(total, Math.floor(due)); i++) {
        const stream = sse > 0 && i % every === 0 && streamers < sse;
        if (stream) streamers++;
        clients.push(stream ? streamer() : waiter());
      }
      await sleep(10);
    }
    steadyFrom = performance.now();
    stopAt = steadyFrom + steadyS * 1000;
    const rampMs = steadyFrom - t0;
    await Promise.all(clients);
    const elapsedMs = performance.now() - t0;
    clearInterval(sampler);
    const none = { times: [], connects: [] };
    const probed = await prober.stop();
    const [mainHealth = none, ownHealth = none] = probed.probes;
    const { depths, backlog } = acceptQueue.stop();
    const queueDepths = depths.sort((a, b) => a - b);
    const overflows1 = listenOverflows();
    const cpu1 = childCpuMs(gw.child);
    const reading = await probe(gw.child);
    const open = sockets_.filter((s) => s.readyState === WebSocket.OPEN).length;
    return {
      waiters,
      sse_streams: sse,
      websockets: sockets,
      websockets_still_open: open,
      instances,
      ramp_s: rampS,
      ramp_s_actual: round(rampMs / 1000, 1),
      steady_s: steadyS,
      jobs,
      errors,
      errors_by_kind: errorKinds,
      seconds: round(elapsedMs / 1000, 1),
      jobs_per_second_steady: round((doneInSteady * 1000) / (steadyS * 1000), 0),
      waits_in_flight_max: Math.max(...inFlight),
      gateway_cpu_ms_per_job: cpu0 === null || cpu1 === null ? null : round((cpu1 - cpu0) / jobs, 3),
      rss_max_mib: Math.max(...rss),
      event_loop_delay_ms: reading.eld,
      sync_call_ms: reading.sync,
      gc_pause_ms: reading.gc,
      gc_pause_ms_by_kind: reading.gcByKind,
      health: healthStats(mainHealth),
      health_own_listener: healthStats(ownHealth),
      // The prober's own event-loop delay (ms): what of a probe's time was the prober's lateness.
      prober_loop_delay_ms: { p99: round(probed.ownDelay.p99, 1), max: round(probed.ownDelay.max, 1) },
      // Why the API port's /health waits during the ramp: connections queued in the kernel behind the
      // arrivals, and handshakes dropped (then resent after 1 s, 3 s) while that queue was full.
      accept_queue: {
        samples: queueDepths.length,
        p50: percentile(queueDepths, 50),
        max: queueDepths.at(-1) ?? null,
        backlog,
        listen_overflows_machine_wide:
          overflows0 === null || overflows1 === null ? null : overflows1 - overflows0,
      },
    };
  } finally {
    for (const s of sockets_) s.terminate();
    await agent.destroy();
    await stopGateway(gw);
    await stopChild(sim);
  }
}

/** Runs the benchmark. */
export async function run(args: Record<string, string>): Promise<BenchResult> {
  const phases = new Set((args.phases ?? 'startup,idle,wide,clients').split(','));
  const stale = process.env.COMFY_GATEWAY_SOURCES === '1' ? 'COMFY_GATEWAY_SOURCES=1' : staleReason();
  const data: Record<string, unknown> = {
    loadavg_start: loads(),
    gateway_build: stale === null ? 'bundle (dist/)' : `TypeScript sources (bundle: ${stale})`,
  };
  // Start-up and memory figures of the sources are not those of the installed command.
  if (stale !== null && process.env.COMFY_GATEWAY_SOURCES !== '1')
    process.stderr.write(
      `bench scale: dist/ is stale (${stale}): the gateways run the TypeScript sources; \`npm run build\` first to measure the bundle\n`,
    );
  // A phase that fails is reported as such; the others still run and are kept.
  const phase = async (name: string, body: () => Promise<Record<string, unknown>>) => {
    if (!phases.has(name)) return;
    try {
      data[name] = await body();
    } catch (err) {
      data[`${name}_error`] = String(err instanceof Error ? (err.stack ?? err.message) : err);
    }
  };
  const sim = phases.has('startup') || phases.has('idle') ? await startSimulatorProcess(2) : null;
  try {
    if (sim)
      await phase('startup', () => startupPhase(Number(args.rounds ?? 5), sim.urls, args.sources === '1'));
    if (sim) await phase('idle', () => idlePhase(sim.urls));
  } finally {
    if (sim) await stopChild(sim.child);
  }
  await phase('wide', () => widePhase(Number(args.samples ?? 300), Number(args.warmup ?? 500)));
  await phase('clients', () =>
    clientsPhase(
      Number(args.waiters ?? 10_000),
      Number(args.sse ?? 1000),
      Number(args.websockets ?? 1000),
      Number(args.ramp ?? 5),
      Number(args.steady ?? 20),
      Number(args.instances ?? 10),
    ),
  );
  data.loadavg_end = loads();
  return { data, summary: summarise(data) };
}

function gcLine(figures: unknown): string {
  const f = figures as Record<string, number>;
  return `${f.rss_mib} / ${f.heap_mib} / ${f.heap_total_mib} / ${f.external_mib}`;
}

function summarise(data: Record<string, unknown>): string {
  const lines = ['| figure | value | target |', '|---|---|---|'];
  const s = data.startup as Record<string, unknown> | undefined;
  if (s) {
    const idle = s.idle as Record<string, unknown>;
    lines.push(
      `| serve → /ready vs bare Fastify (warm compile cache, p50) | ${s.gateway_ready_p50_ms_warm} ms vs ${s.bare_fastify_ready_p50_ms_warm} ms = ${s.ratio_warm}× (cold: ${s.ratio_cold}×; CPU time at /ready: ${s.cpu_ratio_warm}×${s.sources_ratio_warm === undefined ? '' : `; from the TypeScript sources: ${s.sources_ratio_warm}×`}) | ≤ 2× |`,
      `| idle RSS after start-up | ${idle.rss_mib} MiB (${idle.rss_after_gc_mib} MiB after GC) | ≤ 100 MiB |`,
    );
  }
  const i = data.idle as Record<string, unknown> | undefined;
  if (i)
    lines.push(
      `| RSS per 1,000 retained jobs / idle SSE / idle WebSockets | ${i.rss_mib_per_1000_retained_jobs} / ${i.rss_mib_per_1000_idle_sse} / ${i.rss_mib_per_1000_idle_websockets} MiB | reported |`,
    );
  const w = data.wide as Record<string, unknown> | undefined;
  if (w) {
    const flap = w.flap as Record<string, unknown>;
    lines.push(
      `| c=1 overhead p50, 256 vs 8 instances | ${(w.wide as { overhead_p50_ms: number }).overhead_p50_ms} vs ${(w.eight as { overhead_p50_ms: number }).overhead_p50_ms} ms = ${w.overhead_ratio_256_vs_8}× | ≤ 1.5× |`,
      `| … gateway CPU per job at c=1, 256 vs 8 instances | ${(w.wide as { gateway_cpu_ms_per_job: number }).gateway_cpu_ms_per_job} vs ${(w.eight as { gateway_cpu_ms_per_job: number }).gateway_cpu_ms_per_job} ms = ${w.cpu_per_job_ratio_256_vs_8}× | reported |`,
      `| idle CPU over 256 instances (60 s) | ${w.idle_cpu_percent_of_core_60s} % of a core | < 5 % |`,
      `| RSS over 256 instances | ${w.rss_mib_256} MiB (after flapping: ${flap.rss_mib_after} MiB) | < 400 MiB |`,
      `| … after a full GC: RSS / heap used / heap committed / external, before and after flapping | ${gcLine(w.after_gc_256)} MiB; ${gcLine(flap.after_gc)} MiB | reported |`,
      `| half the instances flapping | CPU ${(flap.gateway_cpu_percent_per_15s as number[]).join(' / ')} % per 15 s, max fds ${flap.max_fds}, /health p50 ${flap.health_p50_ms} ms max ${flap.health_max_ms} ms | no storm |`,
    );
  }
  const c = data.clients as Record<string, unknown> | undefined;
  if (c) {
    const eld = c.event_loop_delay_ms as ProbeReading['eld'];
    const h = c.health as Record<string, number>;
    const ho = c.health_own_listener as Record<string, number>;
    lines.push(
      `| ${c.waiters} ?wait + ${c.sse_streams} SSE + ${c.websockets} WS held (ramp ${c.ramp_s} s, took ${c.ramp_s_actual} s; steady ${c.steady_s} s), ${c.jobs_per_second_steady} jobs/s | ${c.errors} errors${
        c.errors
          ? ` (${Object.entries(c.errors_by_kind as Record<string, number>)
              .map(([k, n]) => `${k}: ${n}`)
              .join(', ')})`
          : ''
      }, RSS max ${c.rss_max_mib} MiB, loop delay p99 ${eld.p99} ms (max ${eld.max}), /health p99 ${h.p99_ms} ms (max ${h.max_ms}, ${h.over_50ms} of ${h.probes} over 50 ms, ${h.connects_over_1s} connects over 1 s); on HEALTH_PORT p99 ${ho.p99_ms} ms (max ${ho.max_ms}, ${ho.over_50ms} over 50 ms, ${ho.connects_over_1s} connects over 1 s; the prober's own loop delay p99 ${(c.prober_loop_delay_ms as { p99: number }).p99} ms, max ${(c.prober_loop_delay_ms as { max: number }).max} ms) | 0 errors, < 1 GiB, < 20 ms, < 50 ms |`,
      `| … the API port's accept queue (connections the kernel holds for the gateway), sampled every 250 ms | p50 ${(c.accept_queue as Record<string, unknown>).p50}, max ${(c.accept_queue as Record<string, unknown>).max} of a backlog of ${(c.accept_queue as Record<string, unknown>).backlog}; ${(c.accept_queue as Record<string, unknown>).listen_overflows_machine_wide} handshakes dropped on a full queue (machine-wide count) | reported |`,
      `| … waits in flight (max), gateway CPU per job | ${c.waits_in_flight_max}, ${c.gateway_cpu_ms_per_job} ms (${c.jobs} jobs in ${c.seconds} s) | reported |`,
      `| … GC pauses in the gateway | p99 ${(c.gc_pause_ms as SyncStats).p99} ms, max ${(c.gc_pause_ms as SyncStats).max} ms, ${(c.gc_pause_ms as SyncStats).over_5ms} of ${(c.gc_pause_ms as SyncStats).count} over 5 ms; by kind: ${Object.entries(
        (c.gc_pause_ms_by_kind ?? {}) as Record<string, SyncStats>,
      )
        .filter(([, k]) => k.count > 0)
        .map(([name, k]) => `${name} ${k.count} (p99 ${k.p99}, max ${k.max} ms)`)
        .join(', ')} | reported |`,
    );
    const sync = c.sync_call_ms as ProbeReading['sync'] | undefined;
    if (sync) {
      const show = (k: keyof ProbeReading['sync']) =>
        `${k.replace('_', ' ')} p99 ${sync[k].p99} ms (max ${sync[k].max}, ${sync[k].over_5ms} of ${sync[k].count} over 5 ms)`;
      lines.push(
        `| synchronous calls under that load | ${show('sqlite_statement')}; ${show('sqlite_transaction')}; ${show('json')} | < 5 ms at p99 |`,
      );
    }
  }
  lines.push(
    '',
    `gateway ran from the ${data.gateway_build}${process.env.BENCH_GATEWAY_ARGS ? ` with Node options ${process.env.BENCH_GATEWAY_ARGS}` : ''}; loadavg ${(data.loadavg_start as number[]).join('/')} at start, ${(data.loadavg_end as number[]).join('/')} at end; 2-core VM shared with other work.`,
  );
  return lines.join('\n');
}
