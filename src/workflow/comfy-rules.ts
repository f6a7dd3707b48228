// ComfyUI's own validation rules (execution.py validate_inputs), pure and shared: the simulator
// validates prompts with them as ComfyUI does, and the gateway uses them to refuse at submit what
// ComfyUI would certainly refuse (comfy-rejections.ts). One copy, so the two cannot drift apart.

/** Link compatibility as ComfyUI's validate_node_input decides it (non-strict): exact, `*`, or a shared member of comma lists. */
export function typesCompatible(received: unknown, wanted: unknown): boolean {
  if (typeof received === 'string' && typeof wanted === 'string') {
    if (received === wanted) return true;
    const a = new Set(received.split(',').map((t) => t.trim()));
    const b = new Set(wanted.split(',').map((t) => t.trim()));
    if (a.has('*') || b.has('*')) return true;
    for (const t of a) if (b.has(t)) return true;
    return false;
  }
  return JSON.stringify(received) === JSON.stringify(wanted);
}

/** The error object ComfyUI puts in `node_errors[id].errors` and in its top-level `error`. */
export interface ComfyErrorEntry {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** ComfyUI's messages for the checks both sides run, by error type. */
export const COMFY_MESSAGES = {
  required_input_missing: 'Required input is missing',
  return_type_mismatch: 'Return type mismatch between linked nodes',
  value_smaller_than_min: (value: string, min: string) => `Value ${value} smaller than min of ${min}`,
  value_bigger_than_max: (value: string, max: string) => `Value ${value} bigger than max of ${max}`,
  value_not_in_list: 'Value not in list',
  exception_during_validation: 'Exception when validating node',
  prompt_no_outputs: 'Prompt has no outputs',
  prompt_outputs_failed_validation: 'Prompt outputs failed validation',
} as const;

/** ComfyUI lists combo choices over 20 as "(list of length N)" in its details. */
export const COMBO_LIST_SHOWN = 20;
