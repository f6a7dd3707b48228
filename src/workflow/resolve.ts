// Input resolution over the flattened graph (protocol §5.2.1): follows links through Reroutes,
// subgraph/group boundaries and bypassed nodes to the node that really produces the value.
import { WorkflowConversionError } from './errors.ts';
import type { FlatGraph, GNode } from './graph.ts';
import { typesCompatible } from './node-shape.ts';
import type { ConversionIssue } from './types.ts';

/** What an input resolves to: a link to an emitted-or-muted node, a literal value, or nothing. */
export type Resolution = { link: [string, number] } | { value: unknown } | null;

const MAX_HOPS = 10_000;

/** Per flattened graph: where a walk from (node, slot) wanting a type ended (see resolveInput). */
const resolvedHops = new WeakMap<FlatGraph, Map<string, Resolution>>();

/** Picks the input of a bypassed node that stands in for output `slot` wanted as `want`. */
export function bypassInput(node: GNode, slot: number, want: string): number {
  const inputs = node.inputs;
  if (want === '*' || want === '') {
    if (inputs[slot]) return slot;
    return inputs.length > 0 ? 0 : -1;
  }
  const outType = node.outputs[slot]?.type ?? '*';
  const same = inputs[slot];
  if (same && typesCompatible(same.type, outType) && typesCompatible(same.type, want)) return slot;
  const exact = inputs.findIndex((i) => i.type === want);
  if (exact >= 0) return exact;
  return inputs.findIndex((i) => typesCompatible(i.type, outType) && typesCompatible(i.type, want));
}

/** Resolves input `index` of `node`; records warnings; throws on circular references. */
export function resolveInput(
  g: FlatGraph,
  node: GNode,
  index: number,
  warnings: ConversionIssue[],
): Resolution {
  const input = node.inputs[index];
  if (!input?.link) return null;
  const want = input.type;
  // Most links point straight at a real node: allocate the loop guard only when hopping.
  let visited: Set<string> | undefined;
  let link = input.link;
  const warned = warnings.length;
  let memo = resolvedHops.get(g);
  if (memo === undefined) {
    memo = new Map<string, Resolution>();
    resolvedHops.set(g, memo);
  }
  /** Remembers where every hop of this walk led, unless it warned (warnings name the reader). */
  const settle = (r: Resolution): Resolution => {
    if (visited && warnings.length === warned) for (const key of visited) memo.set(`${key}#${want}`, r);
    return r;
  };
  for (let hops = 0; hops < MAX_HOPS; hops++) {
    const o = g.byId.get(link.origin);
    if (!o) {
      warnings.push({
        severity: 'warning',
        code: 'link_origin_missing',
        message: `node ${node.id} (${node.type}) input "${input.name}" is linked from node ${link.origin}, which does not exist; input omitted`,
        node_id: node.id,
        node_type: node.type,
        input: input.name,
      });
      return null;
    }
    if (hops > 0 || o.kind !== 'node' || o.mode === 4) {
      visited ??= new Set<string>();
      const key = `${o.id}#${link.slot}`;
      // Many readers of one long Reroute chain would each walk it: the chain is walked once.
      const known = memo.get(`${key}#${want}`);
      if (known !== undefined) return settle(known);
      if (visited.has(key)) {
        throw new WorkflowConversionError(
          `circular reference through node ${o.id} while resolving ${node.id}.${input.name}`,
          [
            {
              severity: 'error',
              code: 'circular_link',
              message: `circular reference through node ${o.id} (${o.type}) while resolving node ${node.id} input "${input.name}"`,
              node_id: node.id,
              node_type: node.type,
              input: input.name,
            },
          ],
        );
      }
      visited.add(key);
    }
    if (o.mode === 4 && o.kind !== 'skip') {
      const k = bypassInput(o, link.slot, want);
      const next = k >= 0 ? o.inputs[k]?.link : undefined;
      if (k < 0) {
        warnings.push({
          severity: 'warning',
          code: 'bypass_no_match',
          message: `node ${node.id} (${node.type}) input "${input.name}" comes from bypassed node ${o.id} (${o.type}), which has no input of type ${want}; input omitted`,
          node_id: node.id,
          node_type: node.type,
          input: input.name,
          bypassed_node: o.id,
        });
      }
      if (!next) return null;
      link = next;
      continue;
    }
    switch (o.kind) {
      case 'boundary':
      case 'reroute': {
        const through =
          o.inputs[link.slot] ?? (o.kind === 'reroute' && o.inputs.length === 1 ? o.inputs[0] : undefined);
        if (!through) return null;
        if (through.link) {
          link = through.link;
          continue;
        }
        return settle(through.value ? { value: through.value.v } : null);
      }
      case 'primitive':
      case 'skip':
        return settle(null);
      case 'collapsed':
        if (o.mode === 2 && o.subgraph) {
          throw new WorkflowConversionError(
            `node ${node.id} is linked from muted subgraph instance ${o.id}`,
            [
              {
                severity: 'error',
                code: 'muted_subgraph_link',
                message: `node ${node.id} (${node.type}) input "${input.name}" is linked from muted subgraph instance ${o.id}; frontends disagree on what that means — unmute it or remove the link`,
                node_id: node.id,
                node_type: node.type,
                input: input.name,
              },
            ],
          );
        }
        return settle({ link: [o.id, link.slot] });
      default:
        return settle({ link: [o.id, link.slot] });
    }
  }
  throw new WorkflowConversionError(`link chain too long at node ${node.id}`, [
    {
      severity: 'error',
      code: 'link_chain_too_long',
      message: `link chain too long at node ${node.id}`,
      node_id: node.id,
    },
  ]);
}
