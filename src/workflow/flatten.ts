// Flattens a parsed UI workflow into execution nodes (protocol §5.2 step 3): subgraph instances
// and legacy group nodes expand into `outer:inner` ids joined by pass-through boundary nodes, so
// that link resolution is one uniform walk.
import { addNode, defaultTitle, type FlattenContext, INPUT_BOUNDARY } from './flatten-context.ts';
import { expandGroupNode } from './group-node.ts';
import type { FlatGraph, GInput, GKind, GLink, GNode } from './graph.ts';
import { resolveNodeType } from './node-aliases.ts';
import type { NodeDefs } from './types.ts';
import {
  collectSubgraphs,
  isObject,
  type LinkKey,
  linkKey,
  slotType,
  type SubgraphDef,
  type UiLink,
  type UiNode,
  type UiWorkflow,
} from './ui-format.ts';
import {
  GET_NODE_TYPES,
  groupNodeName,
  INERT_TYPES,
  PASS_THROUGH_TYPES,
  PRIMITIVE_NODE,
  SET_NODE_TYPES,
  USE_EVERYWHERE_TYPES,
} from './virtual-nodes.ts';

const MAX_DEPTH = 32;

/** Flattens the root graph of a parsed workflow; throws WorkflowTooLargeError past `maxNodes`. */
export function flatten(
  wf: UiWorkflow,
  defs: NodeDefs,
  virtualTypes: ReadonlySet<string>,
  maxNodes = Number.POSITIVE_INFINITY,
): FlatGraph {
  const ctx: FlattenContext = {
    wf,
    defs,
    virtualTypes,
    out: { nodes: [], byId: new Map(), issues: [] },
    count: 0,
    maxNodes,
  };
  expandGraph(ctx, wf.nodes, wf.links, '', undefined, []);
  linkSetGetNodes(ctx.out);
  return ctx.out;
}

/**
 * How many nodes a parsed workflow has once its subgraph and group-node instances are expanded,
 * computed per definition (memoised), so a few KB of nested definitions cost microseconds here
 * instead of millions of nodes in `flatten`. Counts like `addNode`: an instance once, plus its
 * contents; muted and bypassed instances are not expanded; a definition that contains itself adds
 * nothing (expansion reports it).
 */
export function expandedSize(wf: UiWorkflow, defs: NodeDefs): number {
  const memo = new Map<string, number>();
  const open = new Set<string>();
  const sizeOf = (nodes: UiNode[]): number => {
    let total = 0;
    for (const n of nodes) {
      if (n === null || typeof n !== 'object' || typeof n.type !== 'string') continue;
      total += 1;
      if (n.mode === 2 || n.mode === 4) continue;
      const sg = wf.subgraphs.get(n.type);
      if (sg) {
        let inner = memo.get(sg.id);
        if (inner === undefined) {
          if (open.has(sg.id)) continue;
          open.add(sg.id);
          inner = sizeOf(sg.nodes);
          open.delete(sg.id);
          memo.set(sg.id, inner);
        }
        total += inner;
        continue;
      }
      const group = groupNodeName(n.type);
      if (group === undefined || Object.hasOwn(defs, n.type)) continue;
      const def = wf.groupNodes[group] as { nodes?: unknown } | undefined;
      if (def && Array.isArray(def.nodes)) total += def.nodes.length;
    }
    return total;
  };
  return sizeOf(wf.nodes);
}

/**
 * expandedSize of a workflow as received, before parseUiWorkflow (no copies, no link maps): the
 * cheap check a caller makes before deciding where, or whether, to convert. Malformed parts count
 * as nothing; the conversion itself reports them.
 */
export function expandedSizeOfRaw(raw: unknown, defs: NodeDefs): number {
  if (!isObject(raw) || !Array.isArray(raw.nodes)) return 0;
  const found: Array<Record<string, unknown>> = [];
  collectSubgraphs(raw.definitions, found, 0);
  const subgraphs = new Map<string, { id: string; nodes: unknown[] }>();
  for (const sg of found)
    if (typeof sg.id === 'string' && !subgraphs.has(sg.id))
      subgraphs.set(sg.id, { id: sg.id, nodes: Array.isArray(sg.nodes) ? sg.nodes : [] });
  const extra = isObject(raw.extra) ? raw.extra : {};
  // No copies: expandedSize skips malformed nodes itself.
  const light = {
    nodes: raw.nodes,
    subgraphs,
    groupNodes: isObject(extra.groupNodes) ? extra.groupNodes : {},
  };
  return expandedSize(light as unknown as UiWorkflow, defs);
}

function kindOf(ctx: FlattenContext, type: string): GKind {
  if (type === PRIMITIVE_NODE) return 'primitive';
  if (PASS_THROUGH_TYPES.has(type) || SET_NODE_TYPES.has(type) || GET_NODE_TYPES.has(type)) return 'reroute';
  if (INERT_TYPES.has(type) || USE_EVERYWHERE_TYPES.has(type)) return 'skip';
  if (ctx.virtualTypes.has(type) && !ctx.defs[type]) return 'reroute';
  return 'node';
}

/** Builds the input list of a node, resolving each link id to its origin's execution id. */
export function mapInputs(
  ctx: FlattenContext,
  n: UiNode,
  links: Map<LinkKey, UiLink>,
  scope: string,
  inputBoundary: string | undefined,
): GInput[] {
  const inputs: GInput[] = [];
  for (const inp of n.inputs ?? []) {
    if (!inp || typeof inp !== 'object') continue;
    const widget = inp.widget && typeof inp.widget.name === 'string' ? inp.widget.name : undefined;
    let link: GLink | null = null;
    if (inp.link !== null && inp.link !== undefined) {
      const l = links.get(linkKey(inp.link));
      if (!l) {
        ctx.out.issues.push({
          severity: 'warning',
          code: 'link_missing',
          message: `node ${scope}${n.id} (${n.type}) input "${inp.name}" refers to link ${inp.link}, which does not exist; treated as unconnected`,
          node_id: `${scope}${n.id}`,
          node_type: n.type,
          input: widget ?? inp.name,
        });
      } else if (Number(l.originId) === -10) {
        if (inputBoundary) link = { origin: inputBoundary, slot: l.originSlot };
      } else link = { origin: `${scope}${l.originId}`, slot: l.originSlot };
    }
    inputs.push({ name: widget ?? inp.name, type: slotType(inp.type), link, widget });
  }
  return inputs;
}

function mapOutputs(n: UiNode): Array<{ name: string; type: string }> {
  return (n.outputs ?? []).map((o) => ({ name: String(o?.name ?? ''), type: slotType(o?.type) }));
}

/** Expands one graph level (the root, or a subgraph definition under an instance). */
export function expandGraph(
  ctx: FlattenContext,
  nodes: UiNode[],
  links: Map<LinkKey, UiLink>,
  scope: string,
  inputBoundary: string | undefined,
  stack: string[],
): void {
  for (const raw of nodes) {
    const id = `${scope}${raw.id}`;
    const sg = ctx.wf.subgraphs.get(raw.type);
    const resolved = sg ? undefined : resolveNodeType(raw.type, ctx.defs, id);
    if (resolved?.issue) ctx.out.issues.push(resolved.issue);
    const n = resolved && resolved.type !== raw.type ? renamed(raw, resolved.type, resolved.inputs) : raw;
    const mode = typeof n.mode === 'number' ? n.mode : 0;
    const inputs = mapInputs(ctx, n, links, scope, inputBoundary);
    const base: GNode = {
      id,
      type: n.type,
      mode,
      kind: 'node',
      title: defaultTitle(ctx, n),
      srName:
        typeof n.properties?.['Node name for S&R'] === 'string'
          ? n.properties['Node name for S&R']
          : undefined,
      inputs,
      outputs: mapOutputs(n),
      saved: n.widgets_values,
      preset: undefined,
      pushed: undefined,
      properties: n.properties ?? {},
      scope,
      subgraph: false,
    };
    const groupName = groupNodeName(n.type);
    if (sg) {
      base.subgraph = true;
      if (mode === 2 || mode === 4) addNode(ctx, { ...base, kind: 'collapsed' });
      else expandSubgraph(ctx, n, base, sg, stack);
    } else if (groupName !== undefined && !ctx.defs[n.type]) {
      if (mode === 2 || mode === 4) addNode(ctx, { ...base, kind: 'collapsed' });
      else if (scope !== '') {
        ctx.out.issues.push({
          severity: 'error',
          code: 'group_node_in_subgraph',
          message: `group node ${id} ("${groupName}") inside a subgraph is not supported; convert the group node to a subgraph`,
          node_id: id,
          node_type: n.type,
        });
      } else expandGroupNode(ctx, n, base, groupName);
    } else addNode(ctx, { ...base, kind: kindOf(ctx, n.type) });
  }
}

/** A copy of a node under today's class name, its renamed inputs (links and widgets) renamed too. */
function renamed(n: UiNode, type: string, inputs: Readonly<Record<string, string>> | undefined): UiNode {
  if (!inputs) return { ...n, type };
  const rename = (name: unknown) =>
    typeof name === 'string' && Object.hasOwn(inputs, name) ? inputs[name] : name;
  return {
    ...n,
    type,
    inputs: n.inputs?.map((inp) =>
      inp && typeof inp === 'object'
        ? {
            ...inp,
            name: rename(inp.name) as string,
            ...(inp.widget ? { widget: { ...inp.widget, name: rename(inp.widget.name) as string } } : {}),
          }
        : inp,
    ),
  };
}

function expandSubgraph(ctx: FlattenContext, n: UiNode, base: GNode, sg: SubgraphDef, stack: string[]): void {
  const id = base.id;
  if (stack.includes(sg.id) || stack.length >= MAX_DEPTH) {
    ctx.out.issues.push({
      severity: 'error',
      code: 'subgraph_recursive',
      message: `subgraph "${sg.name}" (node ${id}) contains itself`,
      node_id: id,
      node_type: n.type,
    });
    return;
  }
  const scope = `${id}:`;
  // Widgets on the instance: values for its widget-carrying inputs, in order, unless proxyWidgets
  // say which inner widgets the saved values belong to.
  const saved = Array.isArray(n.widgets_values) ? n.widgets_values : [];
  const proxy = Array.isArray(n.properties?.proxyWidgets)
    ? (n.properties.proxyWidgets as unknown[])
    : undefined;
  const presets = new Map<string, Map<string, unknown>>();
  if (proxy) {
    proxy.forEach((entry, k) => {
      if (!Array.isArray(entry) || entry.length < 2 || k >= saved.length) return;
      const innerRaw = String(entry[0]);
      if (innerRaw === '-1') return;
      const inner = sg.renumbered.get(innerRaw) ?? innerRaw;
      const key = `${scope}${inner}`;
      const m = presets.get(key) ?? new Map<string, unknown>();
      presets.set(key, m);
      m.set(String(entry[1]), saved[k]);
    });
  } else {
    let k = 0;
    for (const inp of base.inputs) {
      if (inp.widget === undefined) continue;
      if (k < saved.length && inp.link === null) inp.value = { v: saved[k] };
      k++;
    }
  }
  // Input boundary: output i of it is the instance's input i.
  addNode(ctx, {
    ...base,
    id: id + INPUT_BOUNDARY,
    kind: 'boundary',
    outputs: base.inputs.map((i) => ({ name: i.name, type: i.type })),
  });
  // Output boundary (takes the instance's own id, which outer links point at): input s is
  // whatever feeds the definition's output s inside.
  const outInputs: GInput[] = sg.outputs.map((o, s) => {
    let link: GLink | null = null;
    for (const l of sg.links.values()) {
      if (Number(l.targetId) === -20 && l.targetSlot === s) {
        link = { origin: `${scope}${l.originId}`, slot: l.originSlot };
        break;
      }
    }
    return { name: o.name, type: o.type, link, widget: undefined };
  });
  addNode(ctx, { ...base, kind: 'boundary', inputs: outInputs });
  const before = ctx.out.nodes.length;
  expandGraph(ctx, sg.nodes, sg.links, scope, id + INPUT_BOUNDARY, [...stack, sg.id]);
  for (const inner of ctx.out.nodes.slice(before)) {
    const preset = presets.get(inner.id);
    if (preset) inner.preset = preset;
  }
}

// Set/Get pairs are resolved by name within one graph level.
function linkSetGetNodes(g: FlatGraph): void {
  const setters = new Map<string, GNode>();
  for (const n of g.nodes) {
    if (!SET_NODE_TYPES.has(n.type)) continue;
    const name = Array.isArray(n.saved) ? n.saved[0] : undefined;
    if (typeof name === 'string') setters.set(`${n.scope}\u0000${name}`, n);
  }
  for (const n of g.nodes) {
    if (!GET_NODE_TYPES.has(n.type)) continue;
    const name = Array.isArray(n.saved) ? n.saved[0] : undefined;
    const setter = typeof name === 'string' ? setters.get(`${n.scope}\u0000${name}`) : undefined;
    if (!setter) {
      g.issues.push({
        severity: 'error',
        code: 'get_node_unmatched',
        message: `GetNode ${n.id} reads "${String(name)}", but no SetNode of that name exists`,
        node_id: n.id,
        node_type: n.type,
      });
      continue;
    }
    n.inputs = [{ name: 'value', type: '*', link: setter.inputs[0]?.link ?? null, widget: undefined }];
  }
}
