// Benchmark of UI→API conversion: a ~500-node workflow tiled from real recorded workflows
// (reroute chains, primitives, bypassed and muted nodes), converted repeatedly; reports p50/p99.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NodeDefs, toApiPrompt } from '../src/workflow/index.ts';

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

/** One-line description for the dispatcher. */
export const description = 'UI→API conversion of a ~500-node workflow tiled from real pairs (p50/p99 ms)';

/** Runs the benchmark (`--nodes 500 --iterations 300`). */
export async function run(
  args: Record<string, string>,
): Promise<{ data: Record<string, unknown>; summary: string }> {
  const minNodes = Number(args.nodes ?? 500);
  const iterations = Number(args.iterations ?? 300);
  const defs = JSON.parse(
    readFileSync(join(ROOT, 'src/simulator/data/object_info.json'), 'utf8'),
  ) as NodeDefs;
  const { ui, uiNodes } = tileWorkflow(minNodes);
  // The gateway receives workflows as JSON text; each iteration converts a fresh parse of it.
  const text = JSON.stringify(ui);
  for (let i = 0; i < 30; i++) toApiPrompt(JSON.parse(text), defs);
  const times: number[] = [];
  let apiNodes = 0;
  for (let i = 0; i < iterations; i++) {
    const wf = JSON.parse(text);
    const t0 = performance.now();
    apiNodes = Object.keys(toApiPrompt(wf, defs).prompt).length;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const data = {
    uiNodes,
    apiNodes,
    iterations,
    p50_ms: Number(percentile(times, 50).toFixed(3)),
    p99_ms: Number(percentile(times, 99).toFixed(3)),
    max_ms: Number((times.at(-1) ?? 0).toFixed(3)),
    mean_ms: Number((times.reduce((a, b) => a + b, 0) / times.length).toFixed(3)),
    budget_ms: 5,
    // The machine is shared: tail latency is only meaningful next to the load it ran under.
    loadavg_1m: Number((loadavg()[0] ?? 0).toFixed(2)),
    cpus: cpus().length,
  };
  const summary = `| UI nodes | API nodes | iterations | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n| ${uiNodes} | ${apiNodes} | ${iterations} | ${data.p50_ms} | ${data.p99_ms} | ${data.max_ms} |`;
  return { data, summary };
}

/** Entry for callers that pass raw CLI arguments. */
export default async function convertBench(argv: string[] = []): Promise<object> {
  const args: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2)
    args[String(argv[i]).replace(/^--/, '')] = String(argv[i + 1] ?? '');
  return (await run(args)).data;
}
