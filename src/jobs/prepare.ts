// Turns a submitted `workflow` into the API prompt a job runs: detects and converts UI-format
// exports, applies `overrides`, and checks structure and node classes before the job is created,
// so bad input fails the request (422) instead of a queued job.
import {
  ConversionBusyError,
  InvalidWorkflowError,
  ShuttingDownError,
  TooManyNodesError,
  WorkflowFormatUiError,
} from './errors.ts';
import type { ApiPrompt, NodeDefs } from './ports.ts';

/** What preparation needs from the rest of the gateway. */
export interface PrepareOptions {
  /** Capability check over the pool (pool.canEverRun). */
  canEverRun: (classTypes: string[]) => { ok: true } | { ok: false; missing: string[] };
  /**
   * UI → API conversion (workflow module's ConvertPool); absent = UI workflows are rejected.
   * `source` is the request's JSON text and the workflow's place in it, so a large workflow reaches
   * a worker thread without being serialized again on the event loop.
   */
  convertUi?: (ui: unknown, nodeDefs: NodeDefs, call?: ConvertCall) => Promise<ApiPrompt> | ApiPrompt;
  /** Node definitions for conversion (pool.nodeDefsFor()). */
  nodeDefs?: () => Promise<NodeDefs>;
  /** Most nodes an API prompt may have (convertUi enforces the same bound while expanding). */
  maxNodes?: number;
  /**
   * What ComfyUI would certainly reject (workflow module's certainRejection against the pool's
   * definitions), as ComfyUI's `{error, node_errors}`; null when it would accept or cannot tell.
   */
  rejection?: (prompt: ApiPrompt) => Promise<{ error: unknown; node_errors: Record<string, unknown> } | null>;
}

/** Where a workflow's JSON text is and what bounds its conversion. */
export interface ConvertCall {
  source?: { text: string; path: readonly string[] } | undefined;
  signal?: AbortSignal | undefined;
}

/** Refuses an API prompt with more than `limit` nodes before any per-node work. */
export function checkNodeCount(workflow: unknown, limit: number | undefined): void {
  if (limit === undefined || typeof workflow !== 'object' || workflow === null) return;
  let nodes = 0;
  for (const key in workflow) if (Object.hasOwn(workflow, key)) nodes++;
  if (nodes > limit) throw new TooManyNodesError(nodes, limit);
}

/** True for an editor export (it has `nodes` and `links`), v2's definition. */
export function isUiFormat(workflow: unknown): boolean {
  if (typeof workflow !== 'object' || workflow === null || Array.isArray(workflow)) return false;
  const w = workflow as Record<string, unknown>;
  return Array.isArray(w.nodes) && 'links' in w;
}

/** Checks the API-format structure; throws InvalidWorkflowError with per-node details. */
export function checkApiPrompt(workflow: unknown): ApiPrompt {
  if (typeof workflow !== 'object' || workflow === null || Array.isArray(workflow)) {
    throw new InvalidWorkflowError('`workflow` must be an object of nodes keyed by node id.');
  }
  const entries = Object.entries(workflow as Record<string, unknown>);
  if (entries.length === 0) throw new InvalidWorkflowError('`workflow` has no nodes.');
  const nodeErrors: Record<string, Array<{ field: string; reason: string }>> = {};
  for (const [id, node] of entries) {
    const errors: Array<{ field: string; reason: string }> = [];
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      errors.push({ field: '', reason: 'node must be an object with class_type and inputs' });
    } else {
      const n = node as Record<string, unknown>;
      if (typeof n.class_type !== 'string' || n.class_type === '')
        errors.push({ field: 'class_type', reason: 'missing_class_type' });
      if (
        n.inputs !== undefined &&
        (typeof n.inputs !== 'object' || n.inputs === null || Array.isArray(n.inputs))
      ) {
        errors.push({ field: 'inputs', reason: 'inputs must be an object' });
      } else if (n.inputs) {
        for (const [name, value] of Object.entries(n.inputs as Record<string, unknown>)) {
          if (
            Array.isArray(value) &&
            value.length === 2 &&
            typeof value[0] === 'string' &&
            Number.isInteger(value[1])
          ) {
            if (!(value[0] in (workflow as object)))
              errors.push({ field: name, reason: `links to missing node ${value[0]}` });
          }
        }
      }
    }
    if (errors.length) nodeErrors[id] = errors;
  }
  const bad = Object.keys(nodeErrors);
  if (bad.length) {
    throw new InvalidWorkflowError(
      `Invalid node${bad.length > 1 ? 's' : ''} ${bad.slice(0, 5).join(', ')}.`,
      {
        node_errors: nodeErrors,
      },
    );
  }
  const out: ApiPrompt = {};
  for (const [id, node] of entries) {
    const n = node as { class_type: string; inputs?: Record<string, unknown>; _meta?: { title?: string } };
    out[id] = { ...n, inputs: n.inputs ?? {} };
  }
  return out;
}

/** Applies `{nodeId: {input: value}}` overrides to a copy of the prompt. */
export function applyOverrides(
  prompt: ApiPrompt,
  overrides: Record<string, Record<string, unknown>>,
): ApiPrompt {
  const out: ApiPrompt = { ...prompt };
  const missing = Object.keys(overrides).filter((id) => !(id in prompt));
  if (missing.length) {
    throw new InvalidWorkflowError(`overrides name node(s) not in the workflow: ${missing.join(', ')}.`, {
      missing_nodes: missing,
    });
  }
  for (const [id, inputs] of Object.entries(overrides)) {
    const node = prompt[id] as ApiPrompt[string];
    out[id] = { ...node, inputs: { ...node.inputs, ...inputs } };
  }
  return out;
}

/** Full preparation: format, overrides, structure, capability. */
export async function prepareWorkflow(
  workflow: unknown,
  overrides: Record<string, Record<string, unknown>> | undefined,
  options: PrepareOptions,
  call: ConvertCall = {},
): Promise<ApiPrompt> {
  let api: unknown = workflow;
  if (isUiFormat(workflow)) {
    if (!options.convertUi || !options.nodeDefs) {
      throw new WorkflowFormatUiError(
        'This is a UI (editor) workflow; send the API format ("Export (API)").',
      );
    }
    try {
      api = await options.convertUi(workflow, await options.nodeDefs(), call);
    } catch (err) {
      const big = err as { code?: unknown; nodes?: unknown; limit?: unknown };
      if (big.code === 'workflow_too_large' && typeof big.nodes === 'number' && typeof big.limit === 'number')
        throw new TooManyNodesError(big.nodes, big.limit);
      if (big.code === 'conversion_busy' || big.code === 'conversion_timeout')
        throw new ConversionBusyError((err as Error).message);
      if (big.code === 'conversion_closed') throw new ShuttingDownError();
      if (call.signal?.aborted) throw err;
      throw new InvalidWorkflowError(`The UI workflow could not be converted: ${(err as Error).message}`, {
        conversion_error: (err as { code?: string }).code ?? 'conversion_failed',
      });
    }
  }
  checkNodeCount(api, options.maxNodes);
  let prompt = checkApiPrompt(api);
  if (overrides && Object.keys(overrides).length) prompt = checkApiPrompt(applyOverrides(prompt, overrides));
  const classTypes = [...new Set(Object.values(prompt).map((n) => n.class_type))];
  const capable = options.canEverRun(classTypes);
  if (!capable.ok) {
    throw new InvalidWorkflowError(`No instance has the node class(es): ${capable.missing.join(', ')}.`, {
      missing_node_classes: capable.missing,
    });
  }
  const rejected = options.rejection ? await options.rejection(prompt) : null;
  if (rejected) {
    const top = rejected.error as { message?: unknown };
    const nodes = Object.keys(rejected.node_errors);
    throw new InvalidWorkflowError(
      `ComfyUI would reject this workflow: ${String(top.message ?? 'invalid prompt')}${nodes.length ? ` (node${nodes.length > 1 ? 's' : ''} ${nodes.slice(0, 5).join(', ')})` : ''}.`,
      { node_errors: rejected.node_errors, error: rejected.error },
    );
  }
  return prompt;
}
