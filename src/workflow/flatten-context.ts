// What one flattening run shares between flatten.ts and group-node.ts (the run's context, adding a
// node under the node cap, default titles), kept apart so that the two import it and not each other.
import { WorkflowTooLargeError } from './errors.ts';
import type { FlatGraph, GNode } from './graph.ts';
import type { NodeDefs } from './types.ts';
import type { UiNode, UiWorkflow } from './ui-format.ts';

/** Suffix of the internal id of an instance's input boundary (never emitted). */
export const INPUT_BOUNDARY = '\u0000in';

/** Context shared by one flattening run. */
export interface FlattenContext {
  wf: UiWorkflow;
  defs: NodeDefs;
  virtualTypes: ReadonlySet<string>;
  out: FlatGraph;
  /** Workflow nodes added so far (an expanded instance counts once, its boundaries not) and the cap. */
  count: number;
  maxNodes: number;
}

/** Title the frontend shows: the custom title, else the display name, else the class name. */
export function defaultTitle(ctx: FlattenContext, n: UiNode): string {
  if (typeof n.title === 'string') return n.title;
  const dn = ctx.defs[n.type]?.display_name;
  return typeof dn === 'string' && dn ? dn : n.type;
}

/** Adds a node to the flat graph (counted against the cap: boundaries only as their instance). */
export function addNode(ctx: FlattenContext, node: GNode): void {
  if (node.kind !== 'boundary' || node.id.endsWith(INPUT_BOUNDARY)) {
    ctx.count += 1;
    if (ctx.count > ctx.maxNodes) throw new WorkflowTooLargeError(ctx.count, ctx.maxNodes);
  }
  if (ctx.out.byId.has(node.id)) {
    ctx.out.issues.push({
      severity: 'error',
      code: 'duplicate_node_id',
      message: `node id ${node.id} occurs twice`,
      node_id: node.id,
      node_type: node.type,
    });
    return;
  }
  ctx.out.nodes.push(node);
  ctx.out.byId.set(node.id, node);
}
