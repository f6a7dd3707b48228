// Fleet benchmark (issue 17): one gateway on SQLite against 1, 2 and 3 gateways on Redis (BullMQ),
// same box, same simulators. Per setup: overhead over the SDK straight at the simulator at
// concurrency 1 (p50/p99, requests round-robin over the gateways, interleaved with direct runs),
// jobs/s at --concurrency over --instances instances, and CPU per job of the gateways and of Redis
// (a redis-server of the bench's own, AOF off, so nothing else's load is counted).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { ComfyClient } from '../src/comfy/index.ts';
import {
  childCpuMs,
  CHILD_TIMEOUT_MS,
  freePort,
  loads,
  machineTicks,
  percentile,
  ROOT,
  round,
  startSimulatorProcess,
  stealPercent,
  stopChild,
} from './lib/measure.ts';
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

async function startGateway(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start in time')), CHILD_TIMEOUT_MS);
    lines.on('line', (line) => {
      if (!line.includes('gateway listening')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  // Keep draining its logs so it never blocks on a full pipe.
  lines.on('line', () => {});
  return { url, child };
}

const cpuOf = (child: ChildProcess): number => childCpuMs(child) ?? 0;

export async function run(args: Record<string, string>): Promise<BenchResult> {
  const samples = Number(args.samples ?? 300);
  const warmup = Number(args.warmup ?? 500);
  const jobs = Number(args.jobs ?? 3000);
  const concurrency = Number(args.concurrency ?? 64);
  const instances = Number(args.instances ?? 8);
  const setups: Setup[] = [
    { name: 'sqlite ×1', store: 'sqlite', gateways: 1 },
    { name: 'redis ×1', store: 'redis', gateways: 1 },
    { name: 'redis ×2', store: 'redis', gateways: 2 },
    { name: 'redis ×3', store: 'redis', gateways: 3 },
  ].filter((s) => !args.only || args.only.split(',').includes(s.name.replace(' ×', 'x'))) as Setup[];
  const sim = await startSimulatorProcess(instances);
  const direct = new ComfyClient({ baseUrl: sim.urls[0] as string });
  await direct.connect();
  const agent = new Agent({ connections: concurrency * 2, pipelining: 1 });
  const body = JSON.stringify({ prompt: PROMPT });
  const results: Array<Record<string, unknown>> = [];
  const loadAtStart = loads();
  try {
    for (const setup of setups) {
      const dataDir = await mkdtemp(join(tmpdir(), 'gw-bench-fleet-'));
      const redis = setup.store === 'redis' ? await startRedis() : null;
      const gateways: Array<{ url: string; child: ChildProcess }> = [];
      try {
        for (let i = 0; i < setup.gateways; i++) {
          gateways.push(
            await startGateway({
              COMFYUI_URLS: sim.urls.join(','),
              DATA_DIR: join(dataDir, `gw${i}`),
              MAX_QUEUE: '1000000',
              ...(redis ? { REDIS_URL: redis.url, STORAGE_URL: `file://${join(dataDir, 'storage')}` } : {}),
            }),
          );
        }
        let turn = 0;
        const via = async (): Promise<void> => {
          const gw = gateways[turn++ % gateways.length] as { url: string };
          const res = await request(`${gw.url}/prompt_sync`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            dispatcher: agent,
          });
          const text = await res.body.text();
          if (res.statusCode !== 200) throw new Error(`prompt_sync ${res.statusCode}: ${text}`);
        };
        for (let i = 0; i < warmup; i++) {
          await direct.run(PROMPT);
          await via();
        }
        const directMs: number[] = [];
        const gatewayMs: number[] = [];
        const ticks1 = machineTicks();
        for (let i = 0; i < samples; i++) {
          let t = performance.now();
          await direct.run(PROMPT);
          directMs.push(performance.now() - t);
          t = performance.now();
          await via();
          gatewayMs.push(performance.now() - t);
        }
        const steal1 = stealPercent(ticks1, machineTicks());
        directMs.sort((a, b) => a - b);
        gatewayMs.sort((a, b) => a - b);

        const gwCpu0 = gateways.reduce((n, g) => n + cpuOf(g.child), 0);
        const redisCpu0 = redis ? cpuOf(redis.child) : 0;
        const ticks2 = machineTicks();
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < jobs) {
              next++;
              await via();
            }
          }),
        );
        const loadMs = performance.now() - t0;
        const steal2 = stealPercent(ticks2, machineTicks());
        const gwCpu = gateways.reduce((n, g) => n + cpuOf(g.child), 0) - gwCpu0;
        const redisCpu = redis ? cpuOf(redis.child) - redisCpu0 : 0;
        const row = {
          setup: setup.name,
          overheadP50Ms: round(percentile(gatewayMs, 50) - percentile(directMs, 50)),
          overheadP99Ms: round(percentile(gatewayMs, 99) - percentile(directMs, 99)),
          jobsPerSecond: round(jobs / (loadMs / 1000), 1),
          gatewayCpuMsPerJob: round(gwCpu / jobs),
          redisCpuMsPerJob: round(redisCpu / jobs),
          totalCpuMsPerJob: round((gwCpu + redisCpu) / jobs),
          stealPercentC1: steal1,
          stealPercentThroughput: steal2,
        };
        results.push(row);
        process.stderr.write(`${JSON.stringify(row)}\n`);
      } finally {
        for (const g of gateways) await stopChild(g.child);
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
  const lines = [
    `Fleet benchmark: ${instances} simulated instances (0 ms nodes), c=1 over ${samples} samples after ${warmup} warm-up rounds, throughput ${jobs} jobs at c=${concurrency}; load average at start ${loadAtStart.join(' ')}.`,
    '',
    '| setup | overhead p50 | overhead p99 | jobs/s | gateway CPU/job | Redis CPU/job | total CPU/job | vs SQLite |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.setup} | ${r.overheadP50Ms} ms | ${r.overheadP99Ms} ms | ${r.jobsPerSecond} | ${r.gatewayCpuMsPerJob} ms | ${r.redisCpuMsPerJob} ms | ${r.totalCpuMsPerJob} ms | ${base ? `${round((r.totalCpuMsPerJob as number) / (base.totalCpuMsPerJob as number), 2)}×` : '—'} |`,
    ),
  ];
  return {
    data: { instances, samples, warmup, jobs, concurrency, loadAtStart, results },
    summary: lines.join('\n'),
  };
}
