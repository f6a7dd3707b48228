// Structural validation of an API prompt against node definitions, mirroring what ComfyUI's
// `POST /prompt` would reject, so the gateway can answer 4xx before contacting an instance.
import { PromptValidationError, requireNodeDefs, summariseIssues } from './errors.ts';
import { nodeShape, typesCompatible } from './node-shape.ts';
import type { ConversionIssue, NodeDefs } from './types.ts';
import { checkValue, isLink } from './value-check.ts';

const MODEL_FILE = /\.(safetensors|sft|ckpt|pt|pth|bin|gguf|onnx|pkl)$/i;

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Validates a prompt; returns every issue found (empty when it would be accepted). */
export function validatePrompt(prompt: unknown, nodeDefs: NodeDefs): ConversionIssue[] {
  requireNodeDefs('validatePrompt', nodeDefs);
  const issues: ConversionIssue[] = [];
  if (!isObject(prompt) || Object.keys(prompt).length === 0) {
    return [
      {
        severity: 'error',
        code: 'prompt_not_object',
        message: 'the prompt must be a non-empty object of node id → node',
      },
    ];
  }
  let outputs = 0;
  for (const [id, node] of Object.entries(prompt)) {
    if (!isObject(node) || typeof node.class_type !== 'string') {
      issues.push({
        severity: 'error',
        code: 'class_type_missing',
        message: `node ${id} has no class_type`,
        node_id: id,
      });
      continue;
    }
    const type = node.class_type;
    const def = nodeDefs[type];
    if (!def) {
      issues.push({
        severity: 'error',
        code: 'class_type_unknown',
        message: `node ${id} uses class "${type}", which the server does not have (missing custom node?)`,
        node_id: id,
        node_type: type,
      });
      continue;
    }
    const shape = nodeShape(def);
    if (shape.outputNode) outputs++;
    if (node.inputs !== undefined && !isObject(node.inputs)) {
      issues.push({
        severity: 'error',
        code: 'inputs_not_object',
        message: `node ${id} inputs must be an object`,
        node_id: id,
        node_type: type,
      });
      continue;
    }
    const inputs = (node.inputs ?? {}) as Record<string, unknown>;
    for (const input of shape.inputs) {
      const where = { node_id: id, node_type: type, input: input.name };
      if (!(input.name in inputs)) {
        if (!input.optional) {
          issues.push({
            severity: 'error',
            code: 'required_input_missing',
            message: `node ${id} (${type}) is missing required input "${input.name}"`,
            ...where,
          });
        }
        continue;
      }
      const v = inputs[input.name];
      if (isLink(v)) {
        const origin = prompt[v[0]];
        if (!isObject(origin) || typeof origin.class_type !== 'string') {
          issues.push({
            severity: 'error',
            code: 'link_target_missing',
            message: `node ${id} (${type}) input "${input.name}" links to node ${v[0]}, which is not in the prompt`,
            ...where,
          });
          continue;
        }
        const odef = nodeDefs[origin.class_type];
        if (!odef) continue;
        const outType = nodeShape(odef).outputs[v[1]];
        if (outType === undefined) {
          issues.push({
            severity: 'error',
            code: 'link_output_out_of_range',
            message: `node ${id} (${type}) input "${input.name}" uses output ${v[1]} of node ${v[0]} (${origin.class_type}), which has ${nodeShape(odef).outputs.length} output(s)`,
            ...where,
          });
        } else if (
          !typesCompatible(outType, input.type) &&
          !(outType === 'COMBO' && input.widget === 'COMBO')
        ) {
          issues.push({
            severity: 'error',
            code: 'link_type_mismatch',
            message: `node ${id} (${type}) input "${input.name}" expects ${input.type} but node ${v[0]} output ${v[1]} is ${outType}`,
            ...where,
          });
        }
        continue;
      }
      const bad = checkValue(input, v);
      if (!bad) continue;
      // A model file this definition set does not list may exist on another instance of the pool.
      const modelFile = bad.code === 'value_not_in_list' && typeof v === 'string' && MODEL_FILE.test(v);
      issues.push({
        severity: modelFile ? 'warning' : 'error',
        code: modelFile ? 'model_not_listed' : bad.code,
        message: `node ${id} (${type}) input "${input.name}": ${bad.message}`,
        ...where,
      });
    }
  }
  if (outputs === 0 && issues.every((i) => i.code !== 'class_type_unknown')) {
    issues.push({
      severity: 'error',
      code: 'no_output_nodes',
      message: 'the prompt has no output node (SaveImage, PreviewImage, …), so ComfyUI would run nothing',
    });
  }
  return issues;
}

/** Throws a PromptValidationError carrying every issue when the prompt is not valid. */
export function assertValidPrompt(prompt: unknown, nodeDefs: NodeDefs): void {
  const issues = validatePrompt(prompt, nodeDefs).filter((i) => i.severity === 'error');
  if (issues.length > 0)
    throw new PromptValidationError(`invalid prompt: ${summariseIssues(issues)}`, issues);
}
