// Reading the saved UI workflow (protocol §4.1, §4.3): both schema versions' node and link shapes,
// subgraph definitions (nested ones included) and the frontend's load-time renumbering of inner
// node ids that collide.
import { WorkflowFormatError } from './errors.ts';

/** A node as saved in a UI workflow (only fields the converter reads). */
export interface UiNode {
  id: number | string;
  type: string;
  mode?: number;
  title?: string;
  inputs?: UiInput[] | null;
  outputs?: UiOutput[] | null;
  widgets_values?: unknown;
  properties?: Record<string, unknown>;
}

/** An input slot of a saved node. */
export interface UiInput {
  name: string;
  type?: unknown;
  link?: number | string | null;
  widget?: { name: string } | null;
  label?: string;
}

/** An output slot of a saved node. */
export interface UiOutput {
  name?: string;
  type?: unknown;
  links?: Array<number | string> | null;
}

/** A link, normalised from either the array (v0.4) or the object (v1) form. */
export interface UiLink {
  id: number | string;
  originId: number | string;
  originSlot: number;
  targetId: number | string;
  targetSlot: number;
  type: string;
}

/**
 * A link id as a Map key: numbers, and strings that are a number's own spelling, as that number
 * (so `5` and `"5"` are one link, as before), other strings as they are. Saves building a string per
 * lookup: String(id) for tens of thousands of ids cost more than the lookups themselves.
 */
export type LinkKey = string | number;

/** The key a link id is stored and looked up under. */
export function linkKey(id: unknown): LinkKey {
  if (typeof id === 'number') return id;
  const s = String(id);
  const n = Number(s);
  return String(n) === s ? n : s;
}

/** A subgraph definition, with its links indexed by id. */
export interface SubgraphDef {
  id: string;
  name: string;
  nodes: UiNode[];
  links: Map<LinkKey, UiLink>;
  inputs: Array<{ name: string; type: string }>;
  outputs: Array<{ name: string; type: string; linkIds: Array<number | string> }>;
  /** Inner id renumbering applied at load (old id → new id). */
  renumbered: Map<string, string>;
}

/** A parsed UI workflow. */
export interface UiWorkflow {
  version: number;
  nodes: UiNode[];
  links: Map<LinkKey, UiLink>;
  subgraphs: Map<string, SubgraphDef>;
  groupNodes: Record<string, unknown>;
  extra: Record<string, unknown>;
}

/** True for a plain (non-array) object. */
export function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Stringifies a type slot value (strings, legacy arrays/numbers). */
export function slotType(t: unknown): string {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return 'COMBO';
  if (t === null || t === undefined) return '*';
  return String(t);
}

/** Normalises a links array of either form into a map keyed by link id. */
export function parseLinks(raw: unknown, where: string): Map<LinkKey, UiLink> {
  const map = new Map<LinkKey, UiLink>();
  if (raw === undefined || raw === null) return map;
  if (!Array.isArray(raw)) throw new WorkflowFormatError(`${where}: "links" must be an array`);
  for (const l of raw) {
    let link: UiLink | undefined;
    if (Array.isArray(l) && l.length >= 5) {
      link = {
        id: l[0] as number,
        originId: l[1] as number,
        originSlot: Number(l[2]),
        targetId: l[3] as number,
        targetSlot: Number(l[4]),
        type: slotType(l[5]),
      };
    } else if (isObject(l) && l.id !== undefined) {
      link = {
        id: l.id as number,
        originId: l.origin_id as number,
        originSlot: Number(l.origin_slot),
        targetId: l.target_id as number,
        targetSlot: Number(l.target_slot),
        type: slotType(l.type),
      };
    }
    if (link && link.originId !== null && link.originId !== undefined) map.set(linkKey(link.id), link);
  }
  return map;
}

function parseNodes(raw: unknown, where: string): UiNode[] {
  if (!Array.isArray(raw)) throw new WorkflowFormatError(`${where}: "nodes" must be an array`);
  const nodes: UiNode[] = [];
  for (const [i, n] of raw.entries()) {
    if (!hasNodeShape(n)) {
      throw new WorkflowFormatError(`${where}: node #${i} has no numeric "id" or string "type"`, [
        { severity: 'error', code: 'node_malformed', message: `${where}: node #${i} is malformed` },
      ]);
    }
    nodes.push(n);
  }
  return nodes;
}

/** A saved node's required fields (id, type); the optional ones are read defensively where used. */
function hasNodeShape(n: unknown): n is UiNode {
  return isObject(n) && (typeof n.id === 'number' || typeof n.id === 'string') && typeof n.type === 'string';
}

/** Every subgraph definition under `definitions`, nested ones included (32 levels at most). */
export function collectSubgraphs(raw: unknown, out: Array<Record<string, unknown>>, depth: number): void {
  if (!isObject(raw) || !Array.isArray(raw.subgraphs) || depth > 32) return;
  for (const sg of raw.subgraphs) {
    if (!isObject(sg)) continue;
    out.push(sg);
    collectSubgraphs(sg.definitions, out, depth + 1);
  }
}

function maxNodeId(nodes: UiNode[]): number {
  let max = 0;
  for (const n of nodes) {
    const v = Number(n.id);
    if (Number.isFinite(v) && v > max) max = v;
  }
  return max;
}

/** Parses a UI workflow (either schema version), renumbering colliding subgraph inner ids. */
export function parseUiWorkflow(wf: unknown): UiWorkflow {
  if (!isObject(wf)) throw new WorkflowFormatError('a UI workflow must be a JSON object');
  const nodes = parseNodes(wf.nodes, 'workflow');
  const links = parseLinks(wf.links, 'workflow');
  const extra = isObject(wf.extra) ? wf.extra : {};
  const groupNodes = isObject(extra.groupNodes) ? extra.groupNodes : {};
  const version = typeof wf.version === 'number' ? wf.version : 0.4;
  const state = isObject(wf.state) ? wf.state : {};
  let lastId = Math.max(maxNodeId(nodes), Number(wf.last_node_id) || 0, Number(state.lastNodeId) || 0);
  const used = new Set(nodes.map((n) => String(n.id)));
  const rawDefs: Array<Record<string, unknown>> = [];
  collectSubgraphs(wf.definitions, rawDefs, 0);
  const subgraphs = new Map<string, SubgraphDef>();
  for (const sg of rawDefs) {
    if (typeof sg.id !== 'string' || subgraphs.has(sg.id)) continue;
    const where = `subgraph "${String(sg.name ?? sg.id)}"`;
    const innerNodes = parseNodes(sg.nodes ?? [], where).map((n) => ({ ...n }));
    const innerLinks = parseLinks(sg.links, where);
    // The frontend renumbers inner nodes whose ids collide with ids already in use (§4.3).
    const renumbered = new Map<string, string>();
    for (const n of innerNodes) {
      const key = String(n.id);
      if (used.has(key)) {
        lastId += 1;
        renumbered.set(key, String(lastId));
        n.id = lastId;
      }
      used.add(String(n.id));
    }
    if (renumbered.size > 0) {
      for (const l of innerLinks.values()) {
        const o = renumbered.get(String(l.originId));
        if (o !== undefined) l.originId = Number(o);
        const t = renumbered.get(String(l.targetId));
        if (t !== undefined) l.targetId = Number(t);
      }
    }
    const io = (x: unknown) =>
      (Array.isArray(x) ? x : []).filter(isObject).map((s) => ({
        name: String(s.name ?? ''),
        type: slotType(s.type),
        linkIds: Array.isArray(s.linkIds) ? (s.linkIds as Array<number | string>) : [],
      }));
    subgraphs.set(sg.id, {
      id: sg.id,
      name: String(sg.name ?? sg.id),
      nodes: innerNodes,
      links: innerLinks,
      inputs: io(sg.inputs),
      outputs: io(sg.outputs),
      renumbered,
    });
  }
  return { version, nodes, links, subgraphs, groupNodes, extra };
}
