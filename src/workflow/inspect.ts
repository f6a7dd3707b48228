// Inspection of an API prompt: which node classes it needs, its outputs, the file inputs a caller
// must supply, the models it loads, and the literal widget values worth exposing as parameters.
// Everything is derived from node definitions, not from lists of known class names.
import { requireNodeDefs, WorkflowFormatError } from './errors.ts';
import { nodeShape, type WidgetKind } from './node-shape.ts';
import type { ApiPrompt, NodeDefs } from './types.ts';
import { isLink } from './value-check.ts';

/** A file-loading input (image/video/audio/file upload combo). */
export interface FileInput {
  node_id: string;
  class_type: string;
  title: string | undefined;
  input: string;
  kind: 'image' | 'video' | 'audio' | 'file';
  value: unknown;
}

/** A model file a loader node reads. */
export interface ModelInput {
  node_id: string;
  class_type: string;
  input: string;
  value: string;
  /** Whether the definitions list the file as available. */
  available: boolean | undefined;
}

/** A literal widget value that can be overridden. */
export interface ParameterCandidate {
  node_id: string;
  class_type: string;
  title: string | undefined;
  input: string;
  type: WidgetKind;
  value: unknown;
  default?: unknown;
  min?: number;
  max?: number;
  step?: number;
  choices?: readonly unknown[];
  multiline?: boolean;
}

/** What `inspectPrompt` reports. */
export interface PromptInspection {
  classes: string[];
  missingClasses: string[];
  outputNodes: Array<{ node_id: string; class_type: string; title: string | undefined }>;
  fileInputs: FileInput[];
  models: ModelInput[];
  parameters: ParameterCandidate[];
}

const MODEL_FILE = /\.(safetensors|sft|ckpt|pt|pth|bin|gguf|onnx|pkl|yaml)$/i;

/** Describes a prompt: classes used/missing, outputs, file inputs, models, parameter candidates. */
export function inspectPrompt(prompt: ApiPrompt, nodeDefs: NodeDefs): PromptInspection {
  requireNodeDefs('inspectPrompt', nodeDefs);
  if (prompt === null || typeof prompt !== 'object' || Array.isArray(prompt))
    throw new WorkflowFormatError('inspectPrompt needs an API prompt: an object of node id → node');
  const classes = new Set<string>();
  const missing = new Set<string>();
  const result: PromptInspection = {
    classes: [],
    missingClasses: [],
    outputNodes: [],
    fileInputs: [],
    models: [],
    parameters: [],
  };
  for (const [id, node] of Object.entries(prompt)) {
    const type = node?.class_type;
    if (typeof type !== 'string') continue;
    classes.add(type);
    const def = nodeDefs[type];
    if (!def) {
      missing.add(type);
      continue;
    }
    const title = typeof node._meta?.title === 'string' ? node._meta.title : undefined;
    const shape = nodeShape(def);
    if (shape.outputNode) result.outputNodes.push({ node_id: id, class_type: type, title });
    const loader = /loader/i.test(type) || /loader/i.test(String(def.category ?? ''));
    for (const input of shape.widgets) {
      const value = node.inputs?.[input.name];
      if (value === undefined || isLink(value)) continue;
      if (input.upload) {
        result.fileInputs.push({
          node_id: id,
          class_type: type,
          title,
          input: input.name,
          kind: input.upload,
          value,
        });
        continue;
      }
      if (
        input.widget === 'COMBO' &&
        typeof value === 'string' &&
        MODEL_FILE.test(value) &&
        (loader || input.name.endsWith('_name'))
      ) {
        result.models.push({
          node_id: id,
          class_type: type,
          input: input.name,
          value,
          available: input.choices && input.choices.length > 0 ? input.choices.includes(value) : undefined,
        });
        continue;
      }
      if (input.widget === undefined || input.widget === 'OTHER') continue;
      const o = input.options;
      const p: ParameterCandidate = {
        node_id: id,
        class_type: type,
        title,
        input: input.name,
        type: input.widget,
        value,
      };
      if (o.default !== undefined) p.default = o.default;
      if (typeof o.min === 'number') p.min = o.min;
      if (typeof o.max === 'number') p.max = o.max;
      if (typeof o.step === 'number') p.step = o.step;
      if (input.widget === 'COMBO') p.choices = input.choices ?? [];
      if (o.multiline === true) p.multiline = true;
      result.parameters.push(p);
    }
  }
  result.classes = [...classes].sort();
  result.missingClasses = [...missing].sort();
  return result;
}
