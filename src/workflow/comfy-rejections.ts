// What ComfyUI's POST /prompt would certainly reject, answered in its own shape (`error` and
// `node_errors`), so the gateway can refuse such a workflow at submit instead of creating a job that
// fails on its instance. ComfyUI's own validator (comfy-validate.ts) decides, with only the checks
// whose outcome cannot depend on the instance: required inputs, links and their output types,
// bounds of numbers (after ComfyUI's conversion: "64" is 64), choices of fixed lists, output nodes.
// File and model lists (they may be stale or differ per instance), custom validation
// (VALIDATE_INPUTS), values the port cannot convert (Python's int()/float() accept more forms than
// it knows) and classes the definitions lack are left to the instance. Leaving checks out can only accept more, so a
// rejection without them is one ComfyUI would also answer.
import { type ComfyErrorEntry, type ComfyNodeError, validateComfyPrompt } from './comfy-validate.ts';
import { nodeShape } from './node-shape.ts';
import type { NodeDefs } from './types.ts';

/** A certain rejection: ComfyUI's top-level `error` and its `node_errors`. */
export interface ComfyRejection {
  error: ComfyErrorEntry;
  node_errors: Record<string, ComfyNodeError>;
}

const FILE_NAME = /\.[a-z0-9]{2,12}$/i;

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/**
 * The rejection ComfyUI would certainly answer for `prompt` given these node definitions, or null
 * when it would accept it or the outcome is not certain (see the file header).
 */
export function certainRejection(prompt: unknown, defs: NodeDefs): ComfyRejection | null {
  if (!isObject(prompt)) return null;
  for (const node of Object.values(prompt)) {
    // Unknown classes may exist on another instance; node-level structure is checked elsewhere.
    if (!isObject(node) || typeof node.class_type !== 'string' || !Object.hasOwn(defs, node.class_type))
      return null;
  }
  const verdict = validateComfyPrompt(prompt, defs, {
    judgeConversions: false,
    // File and model lists are the instance's business: they may be stale or differ per instance.
    comboChoices: (classType, input, value, listed) => {
      const upload = nodeShape(defs[classType] ?? {}).byName.get(input)?.upload;
      if (upload !== undefined || listed.length === 0) return null;
      if (typeof value === 'string' && FILE_NAME.test(value)) return null;
      return listed.some((c) => typeof c === 'string' && FILE_NAME.test(c)) ? null : listed;
    },
  });
  return verdict.ok ? null : { error: verdict.error, node_errors: verdict.nodeErrors };
}
