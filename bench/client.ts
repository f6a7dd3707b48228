// Client benchmark: runs/s and per-run latency (p50/p99) of ComfyClient.run() at concurrency 1
// and 16 against simulator instances with zero node time, next to a bare client (raw fetch + ws,
// no deadlines, retries or cleanup) measured in the same process as the baseline; then resource
// growth (active handles, listeners, tracked runs) and the client's memory over many runs. The
// simulator runs in a child process (`comfy-gateway simulate`), so the memory figures are the
// client's alone (the simulator keeps up to 10 000 history entries and grows on its own).
// Options: --runs N (per measurement, default 200), --leak-runs N (default 3000; the acceptance figure
// is --leak-runs 10000), --concurrency a,b
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { type ApiPrompt, ComfyClient } from '../src/comfy/index.ts';
import type { BenchResult } from './run.ts';

export const description = 'ComfyClient.run() throughput/latency vs a bare client, and leak check';

/**
 * A tiny prompt; a distinct colour per run so nothing is served from cache. Files go to a subfolder
 * per 1000 runs: like ComfyUI, the simulator lists the target folder on every save, so one folder
 * of 10 000 files would make the server, not the client, the bottleneck.
 */
function promptFor(i: number): ApiPrompt {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: i % 0xffffff } },
    '2': {
      class_type: 'SaveImage',
      inputs: { images: ['1', 0], filename_prefix: `bench/${Math.floor(i / 1000)}/run` },
    },
  };
}

/** The baseline: what a careless client does (one socket, resolve on `executing null`, read history). */
export class BareClient {
  readonly #ws: WebSocket;
  readonly #waiters = new Map<string, () => void>();
  readonly clientId = randomUUID();
  readonly #url: string;

  private constructor(url: string, ws: WebSocket) {
    this.#url = url;
    this.#ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const msg = JSON.parse(String(data)) as { type: string; data: { node?: unknown; prompt_id?: string } };
      if (msg.type === 'executing' && msg.data.node === null && msg.data.prompt_id) {
        this.#waiters.get(msg.data.prompt_id)?.();
      }
    });
  }

  static async open(url: string): Promise<BareClient> {
    const c = randomUUID();
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?clientId=${c}`);
    await new Promise((resolve, reject) => {
      ws.once('message', resolve);
      ws.once('error', reject);
    });
    const client = new BareClient(url, ws);
    Object.assign(client, { clientId: c });
    return client;
  }

  async run(prompt: ApiPrompt): Promise<unknown> {
    const id = randomUUID();
    const done = new Promise<void>((resolve) => this.#waiters.set(id, resolve));
    const res = await fetch(`${this.#url}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, client_id: this.clientId, prompt_id: id }),
    });
    await res.json();
    await done;
    this.#waiters.delete(id);
    const history = await fetch(`${this.#url}/history/${id}`);
    return ((await history.json()) as Record<string, unknown>)[id];
  }

  close(): void {
    this.#ws.terminate();
  }
}

/** Simulated ComfyUI instances in a child process. */
interface SimulatorProcess {
  urls: string[];
  /** Resident memory of the simulator process (Linux /proc), for the record. */
  rssMiB(): number | undefined;
  close(): Promise<void>;
}

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.ts');

/** Starts `comfy-gateway simulate --port 0 --instances n` and waits (bounded) for its URLs. */
async function startSimulatorProcess(instances: number): Promise<SimulatorProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [MAIN, 'simulate', '--port', '0', '--instances', String(instances), '--node-delay-ms', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const urls: string[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = AbortSignal.timeout(30_000);
  try {
    for await (const line of lines) {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m?.[1]) urls.push(m[1]);
      if (urls.length === instances) break;
      if (ready.aborted) throw new Error('simulator did not start within 30 s');
    }
  } catch (err) {
    await close();
    throw err;
  }
  if (urls.length < instances) {
    await close();
    throw new Error(`simulator exited after printing ${urls.length} of ${instances} URLs`);
  }
  return {
    urls,
    rssMiB: () => {
      try {
        const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
        return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
      } catch {
        return undefined;
      }
    },
    close,
  };
}

/** A full GC when possible, so heap figures compare live data and not garbage. */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  return () => gc?.();
})();

interface Measurement {
  client: 'comfy' | 'bare';
  concurrency: number;
  runs: number;
  runsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

async function measure(
  label: Measurement['client'],
  run: (i: number) => Promise<unknown>,
  runs: number,
  concurrency: number,
  offset: number,
): Promise<Measurement> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < runs) {
      const i = next++;
      const t0 = performance.now();
      await run(offset + i);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const q = (p: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    client: label,
    concurrency,
    runs,
    runsPerSec: round((runs / elapsed) * 1000),
    p50Ms: round(q(0.5)),
    p99Ms: round(q(0.99)),
    meanMs: round(latencies.reduce((a, b) => a + b, 0) / latencies.length),
  };
}

const round = (n: number): number => Math.round(n * 100) / 100;

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

function listenerCounts(client: ComfyClient): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of client.eventNames()) out[String(name)] = client.listenerCount(name);
  return out;
}

/** One memory sample of this (client-only) process after a full GC. */
interface MemorySample {
  runs: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapUsedBytes: number;
  simulatorRssMiB: number | undefined;
  /** Throughput of the slice that ended here. */
  runsPerSec?: number;
}

/** Runs the benchmark. */
export async function run(args: Record<string, string>): Promise<BenchResult> {
  const runs = Number(args.runs ?? 200);
  const leakRuns = Number(args['leak-runs'] ?? 3_000);
  const concurrencies = (args.concurrency ?? '1,16').split(',').map(Number);
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  const sim = await startSimulatorProcess(2);
  const [a, b] = sim.urls;
  if (!a || !b) throw new Error('simulator did not start two instances');
  // Separate instances so the two clients never queue behind each other.
  const client = new ComfyClient({ baseUrl: a });
  const bare = await BareClient.open(b);
  const measurements: Measurement[] = [];
  let offset = 0;
  // Each measurement gets its own colour range, so no run is served from ComfyUI's cache.
  const fresh = (n: number): number => {
    offset += n + 1;
    return offset;
  };
  try {
    await client.connect();
    // Warm-up: JIT, keep-alive connections, simulator caches.
    await measure('comfy', (i) => client.run(promptFor(i)), 50, 4, fresh(1000));
    await measure('bare', (i) => bare.run(promptFor(i)), 50, 4, fresh(1000));
    for (const c of concurrencies) {
      // Interleave bare/comfy twice and keep the better of each to damp noise on a shared machine.
      const pair: Measurement[] = [];
      for (let round = 0; round < 2; round++) {
        pair.push(await measure('bare', (i) => bare.run(promptFor(i)), runs, c, fresh(runs + 1)));
        pair.push(await measure('comfy', (i) => client.run(promptFor(i)), runs, c, fresh(runs + 1)));
      }
      for (const label of ['bare', 'comfy'] as const) {
        const best = pair.filter((m) => m.client === label).sort((x, y) => x.p50Ms - y.p50Ms)[0];
        if (best) measurements.push(best);
      }
    }
    // Leak check: resources before and after many runs, memory after a full GC at every tenth.
    const before = {
      resources: resourceCounts(),
      listeners: listenerCounts(client),
      activeRuns: client.activeRuns,
    };
    const sample = (done: number, runsPerSec?: number): MemorySample => {
      collectGarbage();
      const m = process.memoryUsage();
      return {
        runs: done,
        rssMiB: mb(m.rss),
        heapUsedMiB: Math.round((m.heapUsed / 1024 / 1024) * 10) / 10,
        heapUsedBytes: m.heapUsed,
        simulatorRssMiB: sim.rssMiB(),
        ...(runsPerSec !== undefined ? { runsPerSec } : {}),
      };
    };
    const samples: MemorySample[] = [sample(0)];
    const slices = 10;
    const perSlice = Math.max(1, Math.ceil(leakRuns / slices));
    let done = 0;
    let leakMs = 0;
    while (done < leakRuns) {
      const n = Math.min(perSlice, leakRuns - done);
      const t0 = performance.now();
      await measure('comfy', (i) => client.run(promptFor(i)), n, 16, fresh(n + 1));
      const ms = performance.now() - t0;
      leakMs += ms;
      done += n;
      // The simulator's history (capped at 10 000 entries) would otherwise grow through the check.
      await client.clearHistory();
      samples.push(sample(done, round((n / ms) * 1000)));
    }
    await new Promise((r) => setImmediate(r));
    const after = {
      resources: resourceCounts(),
      listeners: listenerCounts(client),
      activeRuns: client.activeRuns,
    };
    const growth: Record<string, number> = {};
    for (const key of new Set([...Object.keys(before.resources), ...Object.keys(after.resources)])) {
      const d = (after.resources[key] ?? 0) - (before.resources[key] ?? 0);
      if (d !== 0) growth[key] = d;
    }
    const ratio = (c: number): number | undefined => {
      const ours = measurements.find((m) => m.client === 'comfy' && m.concurrency === c);
      const base = measurements.find((m) => m.client === 'bare' && m.concurrency === c);
      return ours && base ? round(ours.p50Ms / base.p50Ms) : undefined;
    };
    const leakRunsPerSec = round((leakRuns / leakMs) * 1000);
    // Flatness is judged after the first slice (JIT, pools and caches fill up there).
    const settled = samples.slice(1);
    const first = settled[0];
    const last = settled[settled.length - 1];
    const heapSlopeKiBPer1k =
      first && last && last.runs > first.runs
        ? round(((last.heapUsedBytes - first.heapUsedBytes) / 1024) * (1000 / (last.runs - first.runs)))
        : undefined;
    const summary = [
      '| client | concurrency | runs | runs/s | p50 ms | p99 ms |',
      '|---|---|---|---|---|---|',
      ...measurements.map(
        (m) => `| ${m.client} | ${m.concurrency} | ${m.runs} | ${m.runsPerSec} | ${m.p50Ms} | ${m.p99Ms} |`,
      ),
      '',
      ...concurrencies.map((c) => `p50 latency ratio comfy/bare at concurrency ${c}: ${ratio(c)}`),
      '',
      `leak check: ${leakRuns} runs at concurrency 16 (${leakRunsPerSec} runs/s): active resources before ${JSON.stringify(before.resources)}, after ${JSON.stringify(after.resources)}, growth ${JSON.stringify(growth)}; listeners before ${JSON.stringify(before.listeners)} after ${JSON.stringify(after.listeners)}; tracked runs after ${after.activeRuns}`,
      '',
      'Client process memory after a full GC (the simulator runs in its own process):',
      '',
      '| runs | runs/s (slice) | client RSS MiB | client heap used MiB | simulator RSS MiB |',
      '|---|---|---|---|---|',
      ...samples.map(
        (m) =>
          `| ${m.runs} | ${m.runsPerSec ?? '—'} | ${m.rssMiB} | ${m.heapUsedMiB} | ${m.simulatorRssMiB ?? '—'} |`,
      ),
      '',
      `client heap growth after the first slice: ${heapSlopeKiBPer1k} KiB per 1000 runs; client peak RSS ${mb(peakRss)} MiB`,
    ].join('\n');
    return {
      summary,
      data: {
        load: loadAverage(),
        measurements,
        ratios: Object.fromEntries(concurrencies.map((c) => [c, ratio(c)])),
        leak: { runs: leakRuns, runsPerSec: leakRunsPerSec, before, after, growth },
        memory: { samples, heapSlopeKiBPer1kRuns: heapSlopeKiBPer1k, clientPeakRssMiB: mb(peakRss) },
      },
    };
  } finally {
    clearInterval(sampler);
    bare.close();
    await client.close();
    await sim.close();
  }
}

/** The machine's 1/5/15-minute load averages (other engineers share the box). */
function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);
