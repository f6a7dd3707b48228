// What ComfyUI's POST /prompt would certainly reject, answered in its own shape (`error` and
// `node_errors` with per-node `errors`, `dependent_outputs`, `class_type`), so the gateway can
// refuse such a workflow at submit instead of creating a job that fails on its instance.
// Conservative on purpose: only checks whose outcome cannot depend on the instance — required
// inputs, link targets and their output types, numeric bounds of numbers, choices of fixed lists,
// output nodes. Values ComfyUI would coerce ("64" for an INT), file and model lists (they may be
// stale or differ per instance), custom validation (VALIDATE_INPUTS) and classes the definitions
// lack are left to the instance.
import { COMBO_LIST_SHOWN, COMFY_MESSAGES, type ComfyErrorEntry, typesCompatible } from './comfy-rules.ts';
import { nodeShape } from './node-shape.ts';
import type { NodeDefs } from './types.ts';
import { validatePrompt } from './validate.ts';

/** One node's entry in ComfyUI's `node_errors`. */
export interface ComfyNodeError {
  errors: ComfyErrorEntry[];
  dependent_outputs: string[];
  class_type: string;
}

/** A certain rejection: ComfyUI's top-level `error` and its `node_errors`. */
export interface ComfyRejection {
  error: ComfyErrorEntry;
  node_errors: Record<string, ComfyNodeError>;
}

type Nodes = Record<string, { class_type?: unknown; inputs?: unknown }>;

const FILE_NAME = /\.[a-z0-9]{2,12}$/i;

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function isLink(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Number.isInteger(v[1]);
}

/** `[type, options]` of an input as /object_info declares it (ComfyUI's `input_config`). */
function inputConfig(def: unknown, input: string): unknown {
  if (!isObject(def) || !isObject(def.input)) return undefined;
  for (const section of ['required', 'optional']) {
    const s = def.input[section];
    if (isObject(s) && Object.hasOwn(s, input)) return s[input];
  }
  return undefined;
}

function entry(
  type: string,
  message: string,
  details: string,
  extra: Record<string, unknown>,
): ComfyErrorEntry {
  return { type, message, details, extra_info: extra };
}

/**
 * The rejection ComfyUI would certainly answer for `prompt` given these node definitions, or null
 * when it would accept it or the outcome is not certain (see the file header).
 */
export function certainRejection(prompt: unknown, defs: NodeDefs): ComfyRejection | null {
  if (!isObject(prompt)) return null;
  const nodes = prompt as Nodes;
  for (const node of Object.values(nodes)) {
    // Unknown classes may exist on another instance; node-level structure is checked elsewhere.
    if (!isObject(node) || typeof node.class_type !== 'string' || !defs[node.class_type]) return null;
  }
  const outputs = Object.keys(nodes).filter(
    (id) => defs[nodes[id]?.class_type as string]?.output_node === true,
  );
  if (outputs.length === 0) {
    return { error: entry('prompt_no_outputs', COMFY_MESSAGES.prompt_no_outputs, '', {}), node_errors: {} };
  }
  const perNode = new Map<string, ComfyErrorEntry[]>();
  const add = (id: string, error: ComfyErrorEntry) => {
    const list = perNode.get(id) ?? [];
    list.push(error);
    perNode.set(id, list);
  };
  for (const issue of validatePrompt(prompt, defs)) {
    if (issue.severity !== 'error' || !issue.node_id || !issue.input) continue;
    const node = nodes[issue.node_id];
    const classType = String(node?.class_type);
    const def = defs[classType];
    const value = isObject(node?.inputs) ? node.inputs[issue.input] : undefined;
    const config = inputConfig(def, issue.input);
    const base = { input_name: issue.input, input_config: config };
    switch (issue.code) {
      case 'required_input_missing':
        add(
          issue.node_id,
          entry('required_input_missing', COMFY_MESSAGES.required_input_missing, issue.input, {
            input_name: issue.input,
          }),
        );
        break;
      case 'link_type_mismatch': {
        if (!isLink(value) || !def) break;
        const origin = defs[String(nodes[value[0]]?.class_type)];
        const received = origin?.output?.[value[1]];
        const wanted = Array.isArray(config) ? config[0] : undefined;
        // ComfyUI's own rule decides: only a mismatch it would also see is certain.
        if (received === undefined || wanted === undefined || typesCompatible(received, wanted)) break;
        add(
          issue.node_id,
          entry(
            'return_type_mismatch',
            COMFY_MESSAGES.return_type_mismatch,
            `${issue.input}, received_type(${String(received)}) mismatch input_type(${String(wanted)})`,
            { ...base, received_type: received, linked_node: value },
          ),
        );
        break;
      }
      case 'link_output_out_of_range':
        add(
          issue.node_id,
          entry(
            'exception_during_validation',
            COMFY_MESSAGES.exception_during_validation,
            'tuple index out of range',
            {
              ...base,
              exception_type: 'IndexError',
              exception_message: 'tuple index out of range',
              linked_node: value,
            },
          ),
        );
        break;
      case 'value_below_min':
      case 'value_above_max': {
        if (typeof value !== 'number') break;
        const options = Array.isArray(config) && isObject(config[1]) ? config[1] : {};
        const below = issue.code === 'value_below_min';
        const bound = String(below ? options.min : options.max);
        add(
          issue.node_id,
          entry(
            below ? 'value_smaller_than_min' : 'value_bigger_than_max',
            below
              ? COMFY_MESSAGES.value_smaller_than_min(String(value), bound)
              : COMFY_MESSAGES.value_bigger_than_max(String(value), bound),
            issue.input,
            { ...base, received_value: value },
          ),
        );
        break;
      }
      case 'value_not_in_list': {
        const input = def ? nodeShape(def).byName.get(issue.input) : undefined;
        const choices = input?.choices ?? [];
        // File and model lists are the instance's business: they may be stale or differ per instance.
        if (input?.upload !== undefined || choices.length === 0) break;
        if (choices.some((c) => typeof c === 'string' && FILE_NAME.test(c))) break;
        if (typeof value === 'string' && FILE_NAME.test(value)) break;
        const shown =
          choices.length > COMBO_LIST_SHOWN
            ? `(list of length ${choices.length})`
            : `[${choices.map((c) => `'${String(c)}'`).join(', ')}]`;
        add(
          issue.node_id,
          entry(
            'value_not_in_list',
            COMFY_MESSAGES.value_not_in_list,
            `${issue.input}: '${String(value)}' not in ${shown}`,
            {
              input_name: issue.input,
              input_config: choices.length > COMBO_LIST_SHOWN ? null : config,
              received_value: value,
            },
          ),
        );
        break;
      }
      default:
        // Type conversions (ComfyUI coerces), unlisted models, unknown classes: not certain.
        break;
    }
  }
  if (perNode.size === 0) return null;
  const nodeErrors: Record<string, ComfyNodeError> = {};
  let good = 0;
  for (const out of outputs) {
    const bad = [...ancestors(nodes, out)].filter((id) => perNode.has(id));
    if (bad.length === 0) good++;
    for (const id of bad) {
      const item = nodeErrors[id] ?? {
        errors: perNode.get(id) ?? [],
        dependent_outputs: [],
        class_type: String(nodes[id]?.class_type),
      };
      nodeErrors[id] = item;
      item.dependent_outputs.push(out);
    }
  }
  // ComfyUI runs the valid outputs of a partly valid prompt: that is not a rejection.
  if (good > 0) return null;
  return {
    error: entry('prompt_outputs_failed_validation', COMFY_MESSAGES.prompt_outputs_failed_validation, '', {}),
    node_errors: nodeErrors,
  };
}

/** The node and every node it depends on through links. */
function ancestors(nodes: Nodes, start: string): Set<string> {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (seen.has(id) || !(id in nodes)) continue;
    seen.add(id);
    const inputs = nodes[id]?.inputs;
    for (const v of Object.values(isObject(inputs) ? inputs : {})) if (isLink(v)) stack.push(v[0]);
  }
  return seen;
}
