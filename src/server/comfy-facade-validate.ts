// ComfyUI-shaped validation for the native facade's POST /prompt: runs the workflow module's
// structural checks against the pool's node definitions and renders the result exactly as
// ComfyUI v0.8 does (`{error: {type, message, details, extra_info}, node_errors}` with per-node
// `errors`, `dependent_outputs` and `class_type`), including its partial-outputs rule: when at
// least one output branch is valid the prompt is accepted and `node_errors` names the bad ones.
import { type NodeDefs, validatePrompt } from '../workflow/index.ts';

/** ComfyUI's top-level error object. */
export interface ComfyErrorBody {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** One node's entry in ComfyUI's `node_errors`. */
export interface ComfyNodeError {
  errors: Array<{ type: string; message: string; details: string; extra_info: Record<string, unknown> }>;
  dependent_outputs: string[];
  class_type: string;
}

/** Outcome of validation: accepted (maybe with node_errors of skipped branches) or rejected. */
export type FacadeValidation =
  | { ok: true; nodeErrors: Record<string, ComfyNodeError>; outputs: string[] }
  | { ok: false; error: ComfyErrorBody; nodeErrors: Record<string, ComfyNodeError> };

type Prompt = Record<string, { class_type?: unknown; inputs?: unknown }>;

/** Builds ComfyUI's error body. */
export function comfyError(type: string, message: string, details = ''): ComfyErrorBody {
  return { type, message, details, extra_info: {} };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function isLink(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'number';
}

function inputConfig(def: unknown, input: string): unknown {
  if (!isObject(def) || !isObject(def.input)) return undefined;
  for (const section of ['required', 'optional']) {
    const s = def.input[section];
    if (isObject(s) && input in s) return s[input];
  }
  return undefined;
}

// ComfyUI's wording per check, keyed by the workflow module's issue codes.
const MESSAGES: Record<string, { type: string; message: (v: unknown, cfg: unknown) => string }> = {
  required_input_missing: { type: 'required_input_missing', message: () => 'Required input is missing' },
  value_below_min: {
    type: 'value_smaller_than_min',
    message: (v, cfg) => `Value ${String(v)} smaller than min of ${String(optionOf(cfg, 'min'))}`,
  },
  value_above_max: {
    type: 'value_bigger_than_max',
    message: (v, cfg) => `Value ${String(v)} bigger than max of ${String(optionOf(cfg, 'max'))}`,
  },
  value_not_in_list: { type: 'value_not_in_list', message: () => 'Value not in list' },
  value_not_integer: {
    type: 'invalid_input_type',
    message: () => 'Failed to convert an input value to a INT value',
  },
  value_not_number: {
    type: 'invalid_input_type',
    message: () => 'Failed to convert an input value to a FLOAT value',
  },
  value_not_string: {
    type: 'invalid_input_type',
    message: () => 'Failed to convert an input value to a STRING value',
  },
  value_not_boolean: {
    type: 'invalid_input_type',
    message: () => 'Failed to convert an input value to a BOOLEAN value',
  },
  link_type_mismatch: {
    type: 'return_type_mismatch',
    message: () => 'Return type mismatch between linked nodes',
  },
  link_target_missing: {
    type: 'exception_during_validation',
    message: () => 'Exception when validating node',
  },
  link_output_out_of_range: {
    type: 'exception_during_validation',
    message: () => 'Exception when validating node',
  },
};

function optionOf(cfg: unknown, key: string): unknown {
  return Array.isArray(cfg) && isObject(cfg[1]) ? cfg[1][key] : undefined;
}

/**
 * Validates `prompt` as ComfyUI's POST /prompt would. `acceptFile(classType, input, value)` says
 * whether an unlisted value of a file input is a facade upload ('known'), a missing file, or not a file input.
 */
export function validateForFacade(
  prompt: unknown,
  defs: Record<string, unknown>,
  acceptFile: (classType: string, input: string, value: unknown) => 'known' | 'missing' | 'not_a_file',
): FacadeValidation {
  if (!isObject(prompt)) return reject(comfyError('no_prompt', 'No prompt provided', 'No prompt provided'));
  const nodes = prompt as Prompt;
  for (const [id, node] of Object.entries(nodes)) {
    if (!isObject(node) || typeof node.class_type !== 'string') {
      return reject(
        comfyError(
          'invalid_prompt',
          'Cannot execute because a node is missing the class_type property.',
          `Node ID '#${id}'`,
        ),
      );
    }
    if (!(node.class_type in defs)) {
      return reject(
        comfyError(
          'invalid_prompt',
          `Cannot execute because node ${node.class_type} does not exist.`,
          `Node ID '#${id}'`,
        ),
      );
    }
  }
  const outputs = Object.keys(nodes).filter((id) => {
    const def = defs[nodes[id]?.class_type as string];
    return isObject(def) && def.output_node === true;
  });
  if (outputs.length === 0) return reject(comfyError('prompt_no_outputs', 'Prompt has no outputs'));

  const perNode = new Map<string, ComfyNodeError['errors']>();
  const add = (id: string, error: ComfyNodeError['errors'][number]) => {
    const list = perNode.get(id) ?? [];
    list.push(error);
    perNode.set(id, list);
  };
  // Links that are not [id, slot]: ComfyUI rejects these before the type checks.
  for (const [id, node] of Object.entries(nodes)) {
    for (const [name, value] of Object.entries(isObject(node.inputs) ? node.inputs : {})) {
      if (Array.isArray(value) && !isLink(value) && isLinkShaped(defs, node.class_type as string, name)) {
        add(id, {
          type: 'bad_linked_input',
          message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
          details: name,
          extra_info: {
            input_name: name,
            input_config: inputConfig(defs[node.class_type as string], name),
            received_value: value,
          },
        });
      }
    }
  }
  // Loader nodes validate their file themselves in ComfyUI (VALIDATE_INPUTS).
  for (const [id, node] of Object.entries(nodes)) {
    for (const [name, value] of Object.entries(isObject(node.inputs) ? node.inputs : {})) {
      if (typeof value !== 'string' || acceptFile(String(node.class_type), name, value) !== 'missing')
        continue;
      add(id, {
        type: 'custom_validation_failed',
        message: 'Custom validation failed for node',
        details: `${name} - Invalid image file: ${value}`,
        extra_info: { input_name: name },
      });
    }
  }
  for (const issue of validatePrompt(prompt, defs as NodeDefs)) {
    if (issue.severity !== 'error' || !issue.node_id || !issue.input) continue;
    const node = nodes[issue.node_id];
    const value = isObject(node?.inputs) ? node.inputs[issue.input] : undefined;
    const classType = String(node?.class_type);
    if (issue.code === 'value_not_in_list' && acceptFile(classType, issue.input, value) !== 'not_a_file')
      continue;
    if (perNode.get(issue.node_id)?.some((e) => e.details === issue.input)) continue;
    const cfg = inputConfig(defs[classType], issue.input);
    const known = MESSAGES[issue.code];
    add(issue.node_id, {
      type: known?.type ?? issue.code,
      message: known ? known.message(value, cfg) : issue.message,
      details: detailsOf(issue.code, issue.input, value, cfg, issue.message),
      extra_info: {
        input_name: issue.input,
        ...(cfg !== undefined ? { input_config: cfg } : {}),
        ...(value !== undefined ? { received_value: value } : {}),
        ...(issue.code === 'link_type_mismatch' && isLink(value) ? { linked_node: value } : {}),
      },
    });
  }
  if (perNode.size === 0) return { ok: true, nodeErrors: {}, outputs };

  const nodeErrors: Record<string, ComfyNodeError> = {};
  const good: string[] = [];
  for (const out of outputs) {
    const bad = [...ancestors(nodes, out)].filter((id) => perNode.has(id));
    if (bad.length === 0) good.push(out);
    for (const id of bad) {
      const entry = nodeErrors[id] ?? {
        errors: perNode.get(id) ?? [],
        dependent_outputs: [],
        class_type: String(nodes[id]?.class_type),
      };
      nodeErrors[id] = entry;
      entry.dependent_outputs.push(out);
    }
  }
  if (good.length > 0) return { ok: true, nodeErrors, outputs: good };
  const first = [...perNode.values()][0]?.[0];
  const details =
    first && (first.type === 'return_type_mismatch' || first.type === 'bad_linked_input')
      ? `${first.message}: ${first.details}`
      : first?.type === 'exception_during_validation'
        ? `${first.message}: ${first.details}`
        : '';
  return {
    ok: false,
    error: comfyError('prompt_outputs_failed_validation', 'Prompt outputs failed validation', details),
    nodeErrors,
  };
}

function reject(error: ComfyErrorBody): FacadeValidation {
  return { ok: false, error, nodeErrors: {} };
}

function isLinkShaped(defs: Record<string, unknown>, classType: string, input: string): boolean {
  const cfg = inputConfig(defs[classType], input);
  // A typed (non-widget) input: its type is a string like "IMAGE", not a list of choices.
  return (
    Array.isArray(cfg) &&
    typeof cfg[0] === 'string' &&
    !['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO'].includes(cfg[0])
  );
}

function detailsOf(code: string, input: string, value: unknown, cfg: unknown, message: string): string {
  switch (code) {
    case 'value_not_in_list': {
      const list = Array.isArray(cfg) && Array.isArray(cfg[0]) ? cfg[0] : optionOf(cfg, 'options');
      const shown = Array.isArray(list)
        ? list
            .slice(0, 50)
            .map((x) => `'${String(x)}'`)
            .join(', ')
        : '';
      return `${input}: '${String(value)}' not in [${shown}]`;
    }
    case 'link_type_mismatch': {
      const m = /expects (\S+) but .* is (\S+)$/.exec(message);
      return m ? `${input}, received_type(${m[2]}) mismatch input_type(${m[1]})` : input;
    }
    case 'link_target_missing':
      return isLink(value) ? `'${value[0]}'` : input;
    case 'value_not_integer':
    case 'value_not_number':
    case 'value_not_string':
    case 'value_not_boolean':
      return `${input}, ${String(value)}`;
    default:
      return input;
  }
}

/** The node and every node it depends on through links. */
function ancestors(nodes: Prompt, start: string): Set<string> {
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
