// Benchmark of UI→API conversion: workflows of 500 to 5,000 nodes tiled from real recorded workflows
// (reroute chains, primitives, bypassed and muted nodes), converted in place and on a ConvertPool
// worker; reports what each costs the main thread per call.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { exceedsDepth } from '../src/server/json-depth.ts';
import { certainRejection, ConvertPool, type NodeDefs, toApiPrompt } from '../src/workflow/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PAIRS = join(ROOT, 'test', 'fixtures', 'workflow-pairs');
/** Pairs tiled into the synthetic workflow (v0.4 files without group nodes). */
export const TILE_SOURCES = [
  'core_wyrde_noisy_latent_reroutes',
  'core_cubiq_sdxl_fox_stale_target_widget',
  'core_hunyuan_video_muted_bypassed',
  'core_wyrde_x4_sharpen_reroute_muted',
  'core_ltxv_i2v_bypass',
  'core_sdxl_refiner_prompt',
];

type Json = Record<string, unknown>;

/** Copies a v0.4 UI workflow with every node and link id shifted by `offset`. */
export function shiftWorkflow(ui: Json, offset: number): { nodes: Json[]; links: unknown[][] } {
  const nodes = (ui.nodes as Json[]).map((n) => ({
    ...n,
    id: Number(n.id) + offset,
    inputs: Array.isArray(n.inputs)
      ? n.inputs.map((i: Json) => ({
          ...i,
          link: i.link === null || i.link === undefined ? i.link : Number(i.link) + offset,
        }))
      : n.inputs,
    outputs: Array.isArray(n.outputs)
      ? n.outputs.map((o: Json) => ({
          ...o,
          links: Array.isArray(o.links) ? o.links.map((l: number) => l + offset) : o.links,
        }))
      : n.outputs,
  }));
  const links = (ui.links as unknown[][]).map((l) => [
    Number(l[0]) + offset,
    Number(l[1]) + offset,
    l[2],
    Number(l[3]) + offset,
    l[4],
    l[5],
  ]);
  return { nodes, links };
}

/** Shifts the node ids (keys and link origins) of a recorded API prompt by `offset`. */
export function shiftPrompt(api: Record<string, Json>, offset: number): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [id, node] of Object.entries(api)) {
    const inputs: Json = {};
    for (const [k, v] of Object.entries(node.inputs as Json)) {
      inputs[k] =
        Array.isArray(v) && v.length === 2 && typeof v[0] === 'string'
          ? [String(Number(v[0]) + offset), v[1]]
          : v;
    }
    out[String(Number(id) + offset)] = { ...node, inputs };
  }
  return out;
}

/** Builds a workflow of at least `minNodes` UI nodes by tiling recorded pairs; returns it with the expected prompt. */
export function tileWorkflow(minNodes: number): {
  ui: Json;
  expected: Record<string, Json>;
  uiNodes: number;
} {
  const nodes: Json[] = [];
  const links: unknown[][] = [];
  let expected: Record<string, Json> = {};
  for (let k = 0; nodes.length < minNodes; k++) {
    const name = TILE_SOURCES[k % TILE_SOURCES.length] as string;
    const ui = JSON.parse(readFileSync(join(PAIRS, name, 'ui.json'), 'utf8')) as Json;
    const api = JSON.parse(readFileSync(join(PAIRS, name, 'api.json'), 'utf8')) as Record<string, Json>;
    const offset = (k + 1) * 100_000;
    const s = shiftWorkflow(ui, offset);
    nodes.push(...s.nodes);
    links.push(...s.links);
    expected = { ...expected, ...shiftPrompt(api, offset) };
  }
  return { ui: { version: 0.4, nodes, links, extra: {} }, expected, uiNodes: nodes.length };
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

const round = (x: number) => Number(x.toFixed(3));
/** Tiles overshoot a size by a few nodes (5,035 for 5,000): the bench lifts MAX_WORKFLOW_NODES's default a little. */
const LIMIT = { maxNodes: 10_000 };

/** CPU milliseconds this thread spent in `fn` (the clock ticks coarsely: measure batches, divide). */
async function threadCpuMs(fn: () => Promise<void> | void): Promise<number> {
  const start = process.threadCpuUsage();
  await fn();
  const used = process.threadCpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** One-line description for the dispatcher. */
export const description =
  'UI→API conversion at 500/1000/2000/5000 nodes: in place vs on a ConvertPool worker (main-thread blocking per call)';

/**
 * Runs the benchmark (`--sizes 500,1000,2000,5000 --iterations 40`). Per size: the conversion in
 * place (wall p50/p99 per call, CPU per call) and through a ConvertPool of one worker fed the JSON
 * text, as the gateway does (the main thread's CPU per call, and its longest blocking stretch seen by
 * monitorEventLoopDelay). JSON.parse of the request body is reported apart: Fastify does it for every
 * JSON route, conversion or not.
 */
export async function run(
  args: Record<string, string>,
): Promise<{ data: Record<string, unknown>; summary: string }> {
  const sizes = (args.sizes ?? args.nodes ?? '500,1000,2000,5000').split(',').map(Number);
  const iterations = Number(args.iterations ?? 40);
  const defs = JSON.parse(
    readFileSync(join(ROOT, 'src/simulator/data/object_info.json'), 'utf8'),
  ) as NodeDefs;
  const pool = new ConvertPool({ workers: 1, inlineMaxNodes: 0 });
  const rows: Array<Record<string, number>> = [];
  try {
    for (const size of sizes) {
      const { ui, uiNodes } = tileWorkflow(size);
      // The gateway receives workflows as JSON text; each call converts a fresh parse of it.
      const text = JSON.stringify({ workflow: ui });
      const fresh = () => (JSON.parse(text) as { workflow: unknown }).workflow;
      const parseCpu =
        (await threadCpuMs(() => {
          for (let i = 0; i < iterations; i++) fresh();
        })) / iterations;
      for (let i = 0; i < 5; i++) toApiPrompt(fresh(), defs, LIMIT);
      let apiNodes = 0;
      const inPlace: number[] = [];
      const inPlaceCpu =
        (await threadCpuMs(() => {
          for (let i = 0; i < iterations; i++) {
            const wf = fresh();
            const t0 = performance.now();
            apiNodes = Object.keys(toApiPrompt(wf, defs, LIMIT).prompt).length;
            inPlace.push(performance.now() - t0);
          }
        })) /
          iterations -
        parseCpu;
      inPlace.sort((a, b) => a - b);

      // Through the pool, the main thread does two short stretches per call: the size check and
      // the hand-off of the text (synchronous inside convert()), then JSON.parse of the result.
      const source = { text, path: ['workflow'] };
      const resultText = JSON.stringify(await pool.convert(fresh(), defs, { ...LIMIT, source }));
      for (let i = 0; i < 3; i++) await pool.convert(fresh(), defs, { ...LIMIT, source });
      const handOff: number[] = [];
      const resultParse: number[] = [];
      const calls: number[] = [];
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const workerCpu =
        (await threadCpuMs(async () => {
          for (let i = 0; i < iterations; i++) {
            const wf = fresh();
            const t0 = performance.now();
            const pending = pool.convert(wf, defs, { ...LIMIT, source });
            handOff.push(performance.now() - t0);
            await pending;
            calls.push(performance.now() - t0);
          }
        })) /
          iterations -
        parseCpu;
      loop.disable();
      for (let i = 0; i < iterations; i++) {
        const t0 = performance.now();
        JSON.parse(resultText);
        resultParse.push(performance.now() - t0);
      }
      for (const list of [handOff, resultParse, calls]) list.sort((a, b) => a - b);
      // What else the event loop does per request with a workflow of this size (not conversion):
      // the JSON depth check over the body and the submit-time check of the converted prompt.
      const body = JSON.parse(text) as unknown;
      const converted = toApiPrompt(fresh(), defs, LIMIT).prompt;
      const depthCpu =
        (await threadCpuMs(() => {
          for (let i = 0; i < iterations; i++) exceedsDepth(body, 64);
        })) / iterations;
      const rejectionCpu =
        (await threadCpuMs(() => {
          for (let i = 0; i < iterations; i++) certainRejection(converted, defs as never);
        })) / iterations;
      rows.push({
        uiNodes,
        apiNodes,
        bodyBytes: text.length,
        body_parse_cpu_ms: round(parseCpu),
        inplace_p50_ms: round(percentile(inPlace, 50)),
        inplace_p99_ms: round(percentile(inPlace, 99)),
        inplace_cpu_ms: round(inPlaceCpu),
        worker_handoff_p50_ms: round(percentile(handOff, 50)),
        worker_handoff_p99_ms: round(percentile(handOff, 99)),
        worker_result_parse_p50_ms: round(percentile(resultParse, 50)),
        worker_result_parse_p99_ms: round(percentile(resultParse, 99)),
        worker_main_cpu_ms: round(workerCpu),
        worker_loop_delay_p99_ms: round(loop.percentile(99) / 1e6),
        worker_loop_delay_max_ms: round(loop.max / 1e6),
        worker_call_p50_ms: round(percentile(calls, 50)),
        depth_check_cpu_ms: round(depthCpu),
        certain_rejection_cpu_ms: round(rejectionCpu),
      });
    }
  } finally {
    await pool.close();
  }
  const data = {
    iterations,
    sizes: rows,
    budget_ms: 5,
    // The machine is shared: tail latency is only meaningful next to the load it ran under.
    loadavg_1m: Number((loadavg()[0] ?? 0).toFixed(2)),
    cpus: cpus().length,
  };
  const summary = [
    '| UI nodes | API nodes | body KB | body JSON.parse CPU ms | in place p50 / p99 ms | in place CPU ms | worker: hand-off p50 / p99 ms | worker: result parse p50 / p99 ms | worker: main CPU ms per call | worker: loop delay p99 / max ms | worker call p50 ms | not conversion: depth check / certainRejection CPU ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.uiNodes} | ${r.apiNodes} | ${Math.round((r.bodyBytes ?? 0) / 1024)} | ${r.body_parse_cpu_ms} | ${r.inplace_p50_ms} / ${r.inplace_p99_ms} | ${r.inplace_cpu_ms} | ${r.worker_handoff_p50_ms} / ${r.worker_handoff_p99_ms} | ${r.worker_result_parse_p50_ms} / ${r.worker_result_parse_p99_ms} | ${r.worker_main_cpu_ms} | ${r.worker_loop_delay_p99_ms} / ${r.worker_loop_delay_max_ms} | ${r.worker_call_p50_ms} | ${r.depth_check_cpu_ms} / ${r.certain_rejection_cpu_ms} |`,
    ),
    '',
    `load average ${data.loadavg_1m} on ${data.cpus} CPUs; ${iterations} calls per size.`,
  ].join('\n');
  return { data, summary };
}

/** Entry for callers that pass raw CLI arguments. */
export default async function convertBench(argv: string[] = []): Promise<object> {
  const args: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2)
    args[String(argv[i]).replace(/^--/, '')] = String(argv[i + 1] ?? '');
  return (await run(args)).data;
}
