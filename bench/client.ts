// Client benchmark: runs/s and per-run latency (p50/p99) of ComfyClient.run() at concurrency 1
// and 16 against simulator instances with zero node time, next to a bare client (raw fetch + ws,
// no deadlines, retries or cleanup) measured in the same process as the baseline; then resource
// growth (active handles, listeners, tracked runs) and peak RSS after many runs.
// Options: --runs N (per measurement, default 200), --leak-runs N (default 3000; the acceptance figure
// is --leak-runs 10000), --concurrency a,b
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { type ApiPrompt, ComfyClient } from '../src/comfy/index.ts';
import { startSimulator } from '../src/simulator/index.ts';
import type { BenchResult } from './run.ts';

export const description = 'ComfyClient.run() throughput/latency vs a bare client, and leak check';

/** A tiny prompt; a distinct colour per run so nothing is served from cache. */
function promptFor(i: number): ApiPrompt {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: i % 0xffffff } },
    '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
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

/** Runs the benchmark. */
export async function run(args: Record<string, string>): Promise<BenchResult> {
  const runs = Number(args.runs ?? 200);
  const leakRuns = Number(args['leak-runs'] ?? 3_000);
  const concurrencies = (args.concurrency ?? '1,16').split(',').map(Number);
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  const sim = await startSimulator({ port: 0, instances: 2, nodeDelayMs: 0 });
  const [a, b] = sim.instances;
  if (!a || !b) throw new Error('simulator did not start two instances');
  // Separate instances so the two clients never queue behind each other.
  const client = new ComfyClient({ baseUrl: a.url });
  const bare = await BareClient.open(b.url);
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
    // Leak check: resources before and after many runs.
    const before = {
      resources: resourceCounts(),
      listeners: listenerCounts(client),
      activeRuns: client.activeRuns,
    };
    const rssBefore = process.memoryUsage.rss();
    const leak = await measure('comfy', (i) => client.run(promptFor(i)), leakRuns, 16, fresh(leakRuns + 1));
    await new Promise((r) => setImmediate(r));
    const after = {
      resources: resourceCounts(),
      listeners: listenerCounts(client),
      activeRuns: client.activeRuns,
    };
    const rssAfter = process.memoryUsage.rss();
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
    const summary = [
      '| client | concurrency | runs | runs/s | p50 ms | p99 ms |',
      '|---|---|---|---|---|---|',
      ...measurements.map(
        (m) => `| ${m.client} | ${m.concurrency} | ${m.runs} | ${m.runsPerSec} | ${m.p50Ms} | ${m.p99Ms} |`,
      ),
      '',
      ...concurrencies.map((c) => `p50 latency ratio comfy/bare at concurrency ${c}: ${ratio(c)}`),
      '',
      `leak check: ${leakRuns} runs at concurrency 16 (${leak.runsPerSec} runs/s): active resources before ${JSON.stringify(before.resources)}, after ${JSON.stringify(after.resources)}, growth ${JSON.stringify(growth)}; listeners before ${JSON.stringify(before.listeners)} after ${JSON.stringify(after.listeners)}; tracked runs after ${after.activeRuns}`,
      `RSS before leak runs ${mb(rssBefore)} MiB, after ${mb(rssAfter)} MiB, peak ${mb(peakRss)} MiB (simulator runs in the same process)`,
    ].join('\n');
    return {
      summary,
      data: {
        measurements,
        ratios: Object.fromEntries(concurrencies.map((c) => [c, ratio(c)])),
        leak: { runs: leakRuns, runsPerSec: leak.runsPerSec, before, after, growth },
        rss: { beforeLeakMiB: mb(rssBefore), afterLeakMiB: mb(rssAfter), peakMiB: mb(peakRss) },
      },
    };
  } finally {
    clearInterval(sampler);
    bare.close();
    await client.close();
    await sim.close();
  }
}

const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);
