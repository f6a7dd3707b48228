// UI workflow → API prompt (protocol §5.2): flatten, let PrimitiveNodes push their values, emit
// every executable node with its widget values and resolved links, apply text replacement, drop
// links to nodes that were not emitted.
import {
  requireNodeDefs,
  summariseIssues,
  WorkflowConversionError,
  WorkflowError,
  WorkflowTooLargeError,
} from './errors.ts';
import { expandedSize, flatten } from './flatten.ts';
import type { FlatGraph, GNode } from './graph.ts';
import { nodeShape } from './node-shape.ts';
import { resolveInput } from './resolve.ts';
import { replaceText, type WidgetLookup } from './text-replace.ts';
import type {
  ApiNode,
  ApiPrompt,
  ConversionIssue,
  ConversionResult,
  ConvertOptions,
  NodeDefs,
} from './types.ts';
import { parseUiWorkflow } from './ui-format.ts';
import { mapUnknownWidgetValues, mapWidgetValues } from './widget-values.ts';

/** Default of ConvertOptions.maxNodes: far above real workflows, far below what hurts. */
export const DEFAULT_MAX_NODES = 5000;

/** Converts a saved UI workflow into the API prompt the official frontend would queue. */
export function toApiPrompt(
  uiWorkflow: unknown,
  nodeDefs: NodeDefs,
  options: ConvertOptions = {},
): ConversionResult {
  requireNodeDefs('toApiPrompt', nodeDefs);
  const maxNodes = options.maxNodes ?? DEFAULT_MAX_NODES;
  if (typeof maxNodes !== 'number' || !(maxNodes >= 0))
    throw new WorkflowError('invalid_option', `maxNodes must be a number >= 0, got ${String(maxNodes)}`);
  const wf = parseUiWorkflow(uiWorkflow);
  const size = expandedSize(wf, nodeDefs);
  if (size > maxNodes) throw new WorkflowTooLargeError(size, maxNodes);
  const g = flatten(wf, nodeDefs, new Set(options.virtualNodeTypes ?? []), maxNodes);
  const issues: ConversionIssue[] = [...g.issues];
  const partial = options.unresolved === 'partial';
  const values = new WidgetCache(g, nodeDefs, issues);
  pushPrimitives(g, values, options.now?.() ?? new Date());

  const prompt: ApiPrompt = {};
  /** Emitted nodes whose filename_prefix asks for text replacement, in graph order. */
  const patterned: GNode[] = [];
  for (const node of g.nodes) {
    if (node.kind !== 'node' || node.mode === 2 || node.mode === 4) continue;
    const inputs: Record<string, unknown> = {};
    const widgets = values.get(node);
    for (const [name, v] of widgets)
      inputs[name] = wrapValue(node.pushed?.has(name) ? node.pushed.get(name) : v);
    if (node.pushed) for (const [name, v] of node.pushed) if (!widgets.has(name)) inputs[name] = wrapValue(v);
    for (let i = 0; i < node.inputs.length; i++) {
      const r = resolveInput(g, node, i, issues);
      if (!r) continue;
      const name = (node.inputs[i] as GNode['inputs'][number]).name;
      if (!('link' in r)) {
        inputs[name] = wrapValue(r.value);
        continue;
      }
      const origin = g.byId.get(r.link[0]);
      if (origin && isEmitted(origin)) {
        inputs[name] = r.link;
        continue;
      }
      // §5.2 step 5: a link to a node that is not emitted removes the input, widget value included.
      delete inputs[name];
      issues.push(droppedInput(node, name, r.link[0], origin));
    }
    const apiNode: ApiNode = { inputs, class_type: node.type };
    if (options.meta !== false) apiNode._meta = { title: node.title };
    prompt[node.id] = apiNode;
    const prefix = inputs.filename_prefix;
    if (typeof prefix === 'string' && prefix.includes('%')) patterned.push(node);
  }
  applyFilenameReplacement(g, patterned, prompt, values, issues, options.now?.() ?? new Date());
  applyUseEverywhere(wf.extra, g, prompt, issues);

  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0 && !partial) {
    throw new WorkflowConversionError(
      `cannot convert the workflow (${errors.length} error${errors.length === 1 ? '' : 's'}): ${summariseIssues(errors, 2)}`,
      issues,
    );
  }
  const warnings = issues.map((i) => (i.severity === 'error' ? { ...i, severity: 'warning' as const } : i));
  if (Object.keys(prompt).length === 0 && !partial) {
    throw new WorkflowConversionError('the workflow has no executable nodes', [
      {
        severity: 'error',
        code: 'empty_prompt',
        message: 'the workflow has no executable nodes (all muted, bypassed or frontend-only)',
      },
    ]);
  }
  return { prompt, warnings };
}

function wrapValue(v: unknown): unknown {
  return Array.isArray(v) ? { __value__: v } : v;
}

/** Widget values per node, computed once (used for emission and for text replacement). */
class WidgetCache {
  readonly #g: FlatGraph;
  readonly #defs: NodeDefs;
  readonly #issues: ConversionIssue[];
  readonly #cache = new Map<string, Map<string, unknown>>();
  constructor(g: FlatGraph, defs: NodeDefs, issues: ConversionIssue[]) {
    this.#g = g;
    this.#defs = defs;
    this.#issues = issues;
  }

  /** Widget name → value for an emitted node (reports what it could not map). */
  get(node: GNode): Map<string, unknown> {
    let m = this.#cache.get(node.id);
    if (!m) {
      m = this.#compute(node);
      this.#cache.set(node.id, m);
    }
    return m;
  }

  /** Widget value of a node for text replacement, without reporting. */
  peek(node: GNode, widget: string): { found: boolean; value?: unknown } {
    if (node.kind === 'primitive') {
      const v = Array.isArray(node.saved) ? node.saved[0] : undefined;
      return widget === 'value' || node.inputs.length === 0
        ? { found: v !== undefined, value: v }
        : { found: false };
    }
    if (node.kind !== 'node') return { found: false };
    const m = this.get(node);
    if (node.pushed?.has(widget)) return { found: true, value: node.pushed.get(widget) };
    return m.has(widget) ? { found: true, value: m.get(widget) } : { found: false };
  }

  #compute(node: GNode): Map<string, unknown> {
    const def = this.#defs[node.type];
    const where = { node_id: node.id, node_type: node.type, node_title: node.title };
    if (def) {
      if (node.preset) {
        if (node.presetMissing && node.presetMissing.length > 0) this.#missing(node, node.presetMissing);
        return node.preset;
      }
      const r = mapWidgetValues(nodeShape(def), node.saved);
      if (r.missing.length > 0) this.#missing(node, r.missing);
      if (r.extra.length > 0) {
        this.#issues.push({
          severity: 'warning',
          code: 'widget_values_extra',
          message: `node ${node.id} (${node.type}) saved ${r.extra.length} more widget value(s) than its definition has widgets; ignored`,
          ...where,
          values: r.extra,
        });
      }
      return r.values;
    }
    const widgetInputs = node.inputs
      .filter((i) => i.widget !== undefined)
      .map((i) => ({ name: i.name, type: i.type }));
    const r = mapUnknownWidgetValues(widgetInputs, node.saved);
    const known = node.inputs.length > 0 || r.values.size > 0 || r.unnamed.length > 0;
    if (r.unnamed.length > 0) {
      this.#issues.push({
        severity: 'error',
        code: 'node_widgets_unresolved',
        message: `node ${node.id} (${node.type}, "${node.title}") is not in the node definitions and its ${r.unnamed.length} widget value(s) ${JSON.stringify(r.unnamed).slice(0, 120)} cannot be given input names from the workflow alone; provide /object_info from a server that has this node`,
        ...where,
        values: r.unnamed,
      });
      // Positional guesses would be silently wrong: keep only values named by a dict.
      return Array.isArray(node.saved) ? new Map() : r.values;
    }
    this.#issues.push({
      severity: 'warning',
      code: 'node_type_unknown',
      message: `node ${node.id} (${node.type}) is not in the node definitions; converted from the workflow alone${known ? '' : ' (it has no inputs)'}`,
      ...where,
    });
    return r.values;
  }

  #missing(node: GNode, names: string[]): void {
    this.#issues.push({
      severity: 'warning',
      code: 'widget_value_missing',
      message: `node ${node.id} (${node.type}) has no saved value for ${names.join(', ')} (the definition is newer than the workflow); used the default`,
      node_id: node.id,
      node_type: node.type,
      node_title: node.title,
      inputs: names,
    });
  }

  /** The graph the cache reads. */
  get graph(): FlatGraph {
    return this.#g;
  }
}

// §5.4: a PrimitiveNode writes its value into every widget it feeds, through Reroutes too.
function pushPrimitives(g: FlatGraph, values: WidgetCache, now: Date): void {
  if (!g.nodes.some((p) => p.kind === 'primitive')) return;
  // A walk starts at a primitive and goes on only through reroutes and boundaries, so only links
  // from those are indexed (most links come from ordinary nodes: no key string, no entry for them).
  const forward = new Map<string, Array<{ node: GNode; index: number }>>();
  for (const node of g.nodes) {
    const inputs = node.inputs;
    for (let index = 0; index < inputs.length; index++) {
      const link = (inputs[index] as GNode['inputs'][number]).link;
      if (!link) continue;
      const kind = g.byId.get(link.origin)?.kind;
      if (kind !== 'primitive' && kind !== 'reroute' && kind !== 'boundary') continue;
      const key = `${link.origin}#${link.slot}`;
      const list = forward.get(key);
      if (list) list.push({ node, index });
      else forward.set(key, [{ node, index }]);
    }
  }
  let index: NameIndex | undefined;
  for (const p of g.nodes) {
    if (p.kind !== 'primitive' || !Array.isArray(p.saved) || p.saved.length === 0) continue;
    let value = p.saved[0];
    if (value === undefined) continue;
    if (p.properties['Run widget replace on values'] === true && typeof value === 'string') {
      index ??= new NameIndex(g);
      value = replaceText(value, lookupFor(index, values, p.scope), now).text;
    }
    const seen = new Set<string>();
    const walk = (origin: string, slot: number): void => {
      const key = `${origin}#${slot}`;
      if (seen.has(key)) return;
      seen.add(key);
      for (const { node, index } of forward.get(key) ?? []) {
        const input = node.inputs[index];
        if (!input) continue;
        if (node.kind === 'reroute' || node.kind === 'boundary') {
          walk(node.id, index);
        } else if (node.kind === 'node' && input.widget !== undefined) {
          if (!node.pushed) node.pushed = new Map();
          node.pushed.set(input.widget, value);
        }
      }
    };
    walk(p.id, 0);
  }
}

/** The first node of each S&R name and each title, per graph level, indexed once per conversion. */
class NameIndex {
  readonly #levels = new Map<string, { sr: Map<string, GNode>; title: Map<string, GNode> }>();
  constructor(g: FlatGraph) {
    for (const n of g.nodes) {
      let level = this.#levels.get(n.scope);
      if (!level) {
        level = { sr: new Map(), title: new Map() };
        this.#levels.set(n.scope, level);
      }
      if (n.srName !== undefined && !level.sr.has(n.srName)) level.sr.set(n.srName, n);
      if (!level.title.has(n.title)) level.title.set(n.title, n);
    }
  }

  /** The node `%name.widget%` refers to in `scope`: S&R name first, then title. */
  find(scope: string, name: string): GNode | undefined {
    const level = this.#levels.get(scope);
    return level?.sr.get(name) ?? level?.title.get(name);
  }
}

function lookupFor(index: NameIndex, values: WidgetCache, scope: string): WidgetLookup {
  return (name, widget) => {
    const first = index.find(scope, name);
    if (!first) return { found: false };
    return values.peek(first, widget);
  };
}

// §5.6: save nodes' filename_prefix goes through %Node.widget% / %date:…% replacement.
function applyFilenameReplacement(
  g: FlatGraph,
  patterned: GNode[],
  prompt: ApiPrompt,
  values: WidgetCache,
  issues: ConversionIssue[],
  now: Date,
): void {
  let index: NameIndex | undefined;
  for (const node of patterned) {
    const api = prompt[node.id];
    const v = api?.inputs.filename_prefix;
    if (typeof v !== 'string' || !v.includes('%')) continue;
    index ??= new NameIndex(g);
    const r = replaceText(v, lookupFor(index, values, node.scope), now);
    (api as ApiNode).inputs.filename_prefix = r.text;
    if (r.unresolved.length > 0) {
      issues.push({
        severity: 'warning',
        code: 'text_replacement_unresolved',
        message: `node ${node.id} (${node.type}) filename_prefix: ${r.unresolved.join(', ')} names no node widget that could be read; left as is`,
        node_id: node.id,
        node_type: node.type,
        input: 'filename_prefix',
        patterns: r.unresolved,
      });
    }
  }
}

// Use-Everywhere records the links it injects in extra.ue_links; without them they are lost.
function applyUseEverywhere(
  extra: Record<string, unknown>,
  g: FlatGraph,
  prompt: ApiPrompt,
  issues: ConversionIssue[],
): void {
  const ue = extra.ue_links;
  const hasBroadcasters = g.nodes.some(
    (n) => n.kind === 'skip' && /Everywhere/.test(n.type) && n.mode !== 2 && n.mode !== 4,
  );
  if (!Array.isArray(ue)) {
    if (hasBroadcasters) {
      issues.push({
        severity: 'warning',
        code: 'use_everywhere_links_unknown',
        message:
          'the workflow uses Use-Everywhere nodes but saved no extra.ue_links; the links they inject at queue time are missing',
      });
    }
    return;
  }
  for (const l of ue) {
    if (!l || typeof l !== 'object') continue;
    const { downstream, downstream_slot, upstream, upstream_slot } = l as Record<string, unknown>;
    const target = g.byId.get(String(downstream));
    const api = prompt[String(downstream)];
    const input = target?.inputs[Number(downstream_slot)];
    const origin = g.byId.get(String(upstream));
    if (!api || !input || input.link || !origin || !isEmitted(origin)) continue;
    api.inputs[input.name] = [String(upstream), Number(upstream_slot)];
  }
}

function isEmitted(n: GNode): boolean {
  return n.kind === 'node' && n.mode !== 2 && n.mode !== 4;
}

function droppedInput(
  node: GNode,
  name: string,
  originId: string,
  origin: GNode | undefined,
): ConversionIssue {
  const what = origin
    ? `${origin.mode === 2 ? 'muted' : 'inactive'} node ${originId} (${origin.type})`
    : `missing node ${originId}`;
  return {
    severity: 'warning',
    code: 'input_from_inactive_node',
    message: `node ${node.id} (${node.type}) input "${name}" is linked from ${what}; input omitted`,
    node_id: node.id,
    node_type: node.type,
    input: name,
  };
}
