// The flattened execution graph the converter works on: every UI node (with subgraph and
// group-node instances expanded into `outer:inner` execution ids) as one uniform node record.
import type { ConversionIssue } from './types.ts';

/** Where an input's link comes from: an execution id and output slot. */
export interface GLink {
  origin: string;
  slot: number;
}

/** One input slot of a flattened node. */
export interface GInput {
  name: string;
  type: string;
  link: GLink | null;
  /** Widget name when the slot is a widget's socket. */
  widget: string | undefined;
  /** For subgraph boundaries: the instance's widget value for an unlinked input. */
  value?: { v: unknown };
}

/**
 * How a node behaves in conversion: `node` is emitted (if not muted/bypassed), `reroute` and
 * `boundary` pass links through (input s feeds output s), `primitive` pushes its value into its
 * targets, `skip` is frontend-only without data, `collapsed` is a muted/bypassed instance.
 */
export type GKind = 'node' | 'reroute' | 'boundary' | 'primitive' | 'skip' | 'collapsed';

/** A node of the flattened graph. */
export interface GNode {
  id: string;
  type: string;
  mode: number;
  kind: GKind;
  title: string;
  /** `properties["Node name for S&R"]`, used by text replacement. */
  srName: string | undefined;
  inputs: GInput[];
  outputs: Array<{ name: string; type: string }>;
  /** Raw `widgets_values`. */
  saved: unknown;
  /** Widget values set by an enclosing instance (group-node widgets, promoted subgraph widgets). */
  preset: Map<string, unknown> | undefined;
  /** Widgets the preset had no saved value for (they hold the definition default). */
  presetMissing?: string[];
  /** Values pushed by PrimitiveNodes, which win over saved ones. */
  pushed: Map<string, unknown> | undefined;
  properties: Record<string, unknown>;
  /** Execution-id prefix of the graph level the node lives in (`""` at the root). */
  scope: string;
  /** Whether the node is an instance of a subgraph (for collapsed instances). */
  subgraph: boolean;
}

/** The flattened graph plus what flattening found. */
export interface FlatGraph {
  nodes: GNode[];
  byId: Map<string, GNode>;
  issues: ConversionIssue[];
}
