// Shared shapes of the workflow module: node definitions (/object_info), API prompts, issues.

/** An input spec from /object_info: `[type, options?]`; `type` may be a list (legacy combo). */
export type InputSpec = readonly [string | readonly unknown[], Record<string, unknown>?] | readonly unknown[];

/** One node class as `/object_info` describes it (only the fields this module reads are typed). */
export interface NodeDef {
  input?: {
    required?: Record<string, InputSpec>;
    optional?: Record<string, InputSpec>;
    hidden?: Record<string, unknown>;
  };
  input_order?: { required?: string[]; optional?: string[]; hidden?: string[] };
  output?: readonly unknown[];
  output_is_list?: readonly boolean[];
  output_name?: readonly (string | null)[];
  name?: string;
  display_name?: string | null;
  category?: string;
  output_node?: boolean;
  [key: string]: unknown;
}

/** The node-definition map as served by `GET /object_info`. */
export type NodeDefs = Record<string, NodeDef>;

/** A link inside an API prompt: `[source node id, output index]`. */
export type ApiLink = [string, number];

/** One node of an API prompt. */
export interface ApiNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** An API prompt, the body ComfyUI's `POST /prompt` takes as `prompt`. */
export type ApiPrompt = Record<string, ApiNode>;

/** Severity of an issue: errors make the result unusable, warnings are lossy-but-correct notes. */
export type IssueSeverity = 'error' | 'warning';

/** One structured finding, naming the node (and input) it concerns. */
export interface ConversionIssue {
  severity: IssueSeverity;
  /** Stable machine code, e.g. `unknown_node_type`, `widget_value_missing`. */
  code: string;
  message: string;
  /** Execution id of the node (`"12"`, `"12:5"`) when the issue concerns one. */
  node_id?: string;
  node_type?: string;
  node_title?: string;
  input?: string;
  [key: string]: unknown;
}

/** Options of `toApiPrompt`. */
export interface ConvertOptions {
  /**
   * What to do with nodes whose widgets cannot be mapped (custom nodes absent from the definitions
   * and not self-describing): `error` (default) refuses the conversion; `partial` emits what is
   * known and reports the rest as warnings.
   */
  unresolved?: 'error' | 'partial';
  /** Extra frontend-only (virtual, pass-through) node types, besides the built-in list. */
  virtualNodeTypes?: readonly string[];
  /**
   * Most nodes the workflow may have once subgraphs and group nodes are expanded (default
   * DEFAULT_MAX_NODES). Nested subgraphs multiply: a few KB can describe millions of nodes, so the
   * size is computed before expanding and enforced while expanding (WorkflowTooLargeError).
   */
  maxNodes?: number;
  /** Clock for `%date:…%` text replacement (tests pin it). */
  now?: () => Date;
  /** Whether to set `_meta.title` (default true). */
  meta?: boolean;
}

/** Result of a conversion: the prompt plus non-fatal findings. */
export interface ConversionResult {
  prompt: ApiPrompt;
  warnings: ConversionIssue[];
}
