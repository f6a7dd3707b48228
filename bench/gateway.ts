// Gateway benchmark: the same zero-node-time prompt sent (a) straight to a simulator with the
// client SDK and (b) through the gateway's POST /prompt_sync, interleaved, for the gateway's
// overhead at concurrency 1; then jobs/s at concurrency 64 over 8 instances, SQLite writes per
// job, and RSS of the gateway process over many jobs. The simulator runs in a child process so
// RSS measures the gateway alone.
// Options: --samples N (c=1 pairs, default 300), --jobs N (throughput run, default 5000),
// --concurrency N (default 64), --instances N (default 8), --rss-jobs N (default 50000),
// --store sqlite|memory (default sqlite).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { Agent, request } from 'undici';
import { type ApiPrompt, ComfyClient } from '../src/comfy/index.ts';
import { loadConfig } from '../src/config.ts';
import { startGateway } from '../src/server/index.ts';
import type { BenchResult } from './run.ts';

export const description =
  'Gateway overhead vs direct SDK (c=1), jobs/s (c=64, 8 instances), SQLite writes/job, RSS';

const PROMPT: ApiPrompt = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 1234 } },
  '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

/** Starts simulator instances in a child process; resolves with their URLs. */
async function startSimulatorProcess(instances: number): Promise<{ urls: string[]; child: ChildProcess }> {
  const script = `
    import { startSimulator } from './src/simulator/index.ts';
    const sim = await startSimulator({ port: 0, instances: ${instances}, nodeDelayMs: 0 });
    console.log(JSON.stringify(sim.instances.map((i) => i.url)));
    process.on('SIGTERM', async () => { await sim.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const urls = await new Promise<string[]>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as string[]));
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  return { urls, child };
}

/** Runs the benchmark. */
export async function run(args: Record<string, string>): Promise<BenchResult> {
  const samples = Number(args.samples ?? 300);
  const jobs = Number(args.jobs ?? 5000);
  const concurrency = Number(args.concurrency ?? 64);
  const instances = Number(args.instances ?? 8);
  const rssJobs = Number(args['rss-jobs'] ?? 50_000);
  const storeKind = args.store ?? 'sqlite';
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-bench-'));
  const sim = await startSimulatorProcess(instances);
  const config = loadConfig({
    COMFYUI_URLS: sim.urls.join(','),
    DATA_DIR: dataDir,
    JOB_STORE: storeKind,
    MAX_QUEUE: '100000',
    LOG_LEVEL: 'silent',
  });
  const gateway = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
    logger: pino({ level: 'silent' }),
  });
  const agent = new Agent({ connections: concurrency * 2, pipelining: 1 });
  const direct = new ComfyClient({ baseUrl: sim.urls[0] as string });
  try {
    await direct.connect();
    const body = JSON.stringify({ prompt: PROMPT });
    const viaGateway = async (): Promise<void> => {
      const res = await request(`${gateway.url}/prompt_sync`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher: agent,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`prompt_sync ${res.statusCode}: ${text}`);
    };
    // Warm-up: JIT, connections, the instance's cache for this prompt.
    for (let i = 0; i < 50; i++) {
      await direct.run(PROMPT);
      await viaGateway();
    }

    // (1) Overhead at concurrency 1, interleaved so drift hits both sides alike.
    const directMs: number[] = [];
    const gatewayMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      let t = performance.now();
      await direct.run(PROMPT);
      directMs.push(performance.now() - t);
      t = performance.now();
      await viaGateway();
      gatewayMs.push(performance.now() - t);
    }
    directMs.sort((a, b) => a - b);
    gatewayMs.sort((a, b) => a - b);
    const overheadP50 = percentile(gatewayMs, 50) - percentile(directMs, 50);
    const overheadP99 = percentile(gatewayMs, 99) - percentile(directMs, 99);

    // (2) Throughput at `concurrency` over all instances, and store writes per job.
    const load = async (count: number, onProgress?: (done: number) => void): Promise<number> => {
      let next = 0;
      let done = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            next++;
            await viaGateway();
            done++;
            onProgress?.(done);
          }
        }),
      );
      return performance.now() - t0;
    };
    const writesBefore = gateway.manager.storeWrites;
    const commitsBefore = gateway.manager.storeCommits ?? 0;
    const cpuBefore = process.cpuUsage();
    const loadMs = await load(jobs);
    const cpu = process.cpuUsage(cpuBefore);
    // CPU time of this process (gateway + load generator; the simulator is another process) per
    // job: unlike jobs/s it does not depend on what else runs on the machine.
    const cpuMsPerJob = (cpu.user + cpu.system) / 1000 / jobs;
    const jobsPerSecond = jobs / (loadMs / 1000);
    const writesPerJob = (gateway.manager.storeWrites - writesBefore) / jobs;
    const commitsPerJob = ((gateway.manager.storeCommits ?? 0) - commitsBefore) / jobs;

    // (3) RSS over many jobs: sampled every 10% after a warm-up tenth.
    const rss: Array<{ jobs: number; rssMb: number; heapMb: number }> = [];
    const step = Math.max(1, Math.floor(rssJobs / 10));
    const rssMs = await load(rssJobs, (done) => {
      if (done % step === 0) {
        const m = process.memoryUsage();
        rss.push({ jobs: done, rssMb: round(m.rss / 2 ** 20, 1), heapMb: round(m.heapUsed / 2 ** 20, 1) });
      }
    });
    // Warm-up is the first half: V8 grows its heap lazily for a while; after that RSS must be flat.
    const warm = rss[Math.floor(rss.length / 2) - 1] ?? rss[0];
    const last = rss.at(-1);
    const growth = warm && last ? round(last.rssMb - warm.rssMb, 1) : null;

    const data = {
      instances,
      concurrency,
      store: storeKind,
      samples,
      direct_p50_ms: round(percentile(directMs, 50)),
      direct_p99_ms: round(percentile(directMs, 99)),
      gateway_p50_ms: round(percentile(gatewayMs, 50)),
      gateway_p99_ms: round(percentile(gatewayMs, 99)),
      overhead_p50_ms: round(overheadP50),
      overhead_p99_ms: round(overheadP99),
      throughput_jobs: jobs,
      jobs_per_second: round(jobsPerSecond, 1),
      cpu_ms_per_job: round(cpuMsPerJob, 3),
      sqlite_writes_per_job: round(writesPerJob, 2),
      sqlite_commits_per_job: round(commitsPerJob, 3),
      rss_jobs: rssJobs,
      rss_jobs_per_second: round(rssJobs / (rssMs / 1000), 1),
      rss_samples: rss,
      rss_growth_second_half_mb: growth,
    };
    const summary = [
      `| metric | value | target |`,
      `|---|---|---|`,
      `| overhead p50 (c=1) | ${data.overhead_p50_ms} ms (gateway ${data.gateway_p50_ms} vs direct ${data.direct_p50_ms}) | ≤ 1 ms |`,
      `| overhead p99 (c=1) | ${data.overhead_p99_ms} ms (gateway ${data.gateway_p99_ms} vs direct ${data.direct_p99_ms}) | ≤ 5 ms |`,
      `| throughput (c=${concurrency}, ${instances} instances) | ${data.jobs_per_second} jobs/s | ≥ 1000 |`,
      `| gateway CPU per job (incl. load generator) | ${data.cpu_ms_per_job} ms | — |`,
      `| ${storeKind} row writes per job | ${data.sqlite_writes_per_job} (${data.sqlite_commits_per_job} commits/job, group commit) | small |`,
      `| RSS after ${rssJobs} jobs | ${last?.rssMb ?? '?'} MB (${growth} MB change over the second half) | flat |`,
    ].join('\n');
    return { data, summary };
  } finally {
    await direct.close();
    await gateway.close();
    await agent.close();
    sim.child.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  }
}
