// Named outputs of a step: which node's file(s) or text value a name stands for (declared by a
// template or an inline step), and extracting them from a finished job. Files are references
// (job id + output index), never bytes: they move between steps as streams when a later step
// uses them (see FileStager).
import { GatewayError } from '../errors.ts';
import { type JobRecord, outputContentPath } from '../jobs/index.ts';
import { type ApiPrompt, findNodes } from '../workflow/index.ts';

/** What a declared output reads. */
export type OutputValueType = 'file' | 'integer' | 'number' | 'string' | 'boolean' | 'json';

/** One declared output: `{ node: Save }`, `{ node: Save, all: true }`, `{ node: Width, type: integer }`. */
export interface OutputSpec {
  /** Node id or title. */
  node: string;
  all: boolean;
  type: OutputValueType;
}

/** A file output of a step as expressions see it; passed to a later step, it is staged there. */
export interface FileRef {
  kind: 'file';
  job_id: string;
  /** Index in the job's outputs. */
  index: number;
  node_id: string;
  filename: string;
  subfolder: string;
  /** ComfyUI folder type (output, temp). */
  type: string;
  content_type: string;
  /** Host-relative link to the bytes (made absolute when rendered). */
  url: string;
}

/** True for a value that is a FileRef. */
export function isFileRef(value: unknown): value is FileRef {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return v.kind === 'file' && typeof v.job_id === 'string' && Number.isInteger(v.index);
}

const TYPES = new Set<OutputValueType>(['file', 'integer', 'number', 'string', 'boolean', 'json']);
const KEYS = new Set(['node', 'all', 'type', 'description']);
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Parses an `outputs:` declaration; node names are checked against `prompt` when it is known. */
export function parseOutputSpecs(
  raw: unknown,
  prompt: ApiPrompt | undefined,
): { outputs: Record<string, OutputSpec>; issues: Array<{ output: string; code: string; message: string }> } {
  const outputs: Record<string, OutputSpec> = {};
  const issues: Array<{ output: string; code: string; message: string }> = [];
  if (raw === undefined || raw === null) return { outputs, issues };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    issues.push({
      output: '',
      code: 'outputs_invalid',
      message: 'outputs is an object of name → { node, all?, type? }',
    });
    return { outputs, issues };
  }
  for (const [name, spec] of Object.entries(raw as Record<string, unknown>)) {
    const bad = (code: string, message: string) => issues.push({ output: name, code, message });
    if (!NAME.test(name)) {
      bad('output_name_invalid', `an output name must match ${NAME.source}`);
      continue;
    }
    const s = typeof spec === 'string' ? { node: spec } : spec;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) {
      bad('output_invalid', 'an output is { node, all?, type? }');
      continue;
    }
    const o = s as Record<string, unknown>;
    for (const key of Object.keys(o))
      if (!KEYS.has(key)) bad('unknown_field', `unknown field "${key}" (fields: node, all, type)`);
    const node = typeof o.node === 'number' ? String(o.node) : o.node;
    if (typeof node !== 'string' || node === '') {
      bad('output_node_missing', 'an output names its node (id or title)');
      continue;
    }
    const type = (o.type ?? 'file') as OutputValueType;
    if (!TYPES.has(type)) {
      bad('output_type_invalid', `type must be one of ${[...TYPES].join(', ')}`);
      continue;
    }
    if (o.all !== undefined && typeof o.all !== 'boolean') bad('output_invalid', 'all is true or false');
    if (prompt) {
      const ids = findNodes(prompt, node);
      if (ids.length !== 1) {
        bad(
          'unknown_node',
          ids.length === 0
            ? `no node has id or title "${node}"`
            : `title "${node}" matches nodes ${ids.join(', ')}`,
        );
        continue;
      }
    }
    outputs[name] = { node, all: o.all === true, type };
  }
  return { outputs, issues };
}

/** A declared output the job did not produce, or a text that does not parse as its type. */
export class OutputExtractionError extends GatewayError {
  constructor(message: string) {
    super('output_missing', 500, message);
  }
}

/** The file references of a finished job, in output order. */
export function fileRefs(job: JobRecord): FileRef[] {
  return job.outputs.map((o, index) => {
    const source = job.output_sources[index];
    return {
      kind: 'file',
      job_id: job.id,
      index,
      node_id: o.node_id,
      filename: source?.filename ?? o.name,
      subfolder: source?.subfolder ?? String(o.subfolder ?? ''),
      type: source?.type ?? String(o.comfy_type ?? 'output'),
      content_type: o.content_type,
      url: outputContentPath(job.id, index),
    };
  });
}

/**
 * A finished job's outputs as a step's `outputs`: `files` (every file), `nodes` (per node id:
 * files and texts), and each declared name. Throws OutputExtractionError for a declared output
 * the job lacks.
 */
export function extractOutputs(job: JobRecord, specs: Record<string, OutputSpec>): Record<string, unknown> {
  const files = fileRefs(job);
  const nodes: Record<string, { files: FileRef[]; text: string[] }> = {};
  const nodeOf = (id: string) => {
    nodes[id] ??= { files: [], text: [] };
    return nodes[id];
  };
  for (const f of files) nodeOf(f.node_id).files.push(f);
  for (const t of job.texts) nodeOf(t.node_id).text.push(t.text);
  const out: Record<string, unknown> = { files, nodes };
  for (const [name, spec] of Object.entries(specs)) {
    const ids = findNodes(job.workflow, spec.node);
    const id = ids[0];
    if (id === undefined)
      throw new OutputExtractionError(`output "${name}": the workflow has no node "${spec.node}"`);
    const node = nodes[id] ?? { files: [], text: [] };
    if (spec.type === 'file') {
      if (spec.all) out[name] = node.files;
      else {
        const first = node.files[0];
        if (!first) throw new OutputExtractionError(`output "${name}": node ${id} produced no file`);
        out[name] = first;
      }
      continue;
    }
    if (spec.all) {
      out[name] = node.text.map((t) => parseText(t, spec.type, name, id));
      continue;
    }
    const text = node.text[0];
    if (text === undefined)
      throw new OutputExtractionError(`output "${name}": node ${id} produced no text value`);
    out[name] = parseText(text, spec.type, name, id);
  }
  return out;
}

function parseText(text: string, type: OutputValueType, name: string, node: string): unknown {
  const t = text.trim();
  const fail = (): never => {
    throw new OutputExtractionError(
      `output "${name}": node ${node} gave ${JSON.stringify(t.slice(0, 80))}, not ${type === 'integer' ? 'an' : 'a'} ${type}`,
    );
  };
  switch (type) {
    case 'integer':
      return /^-?\d+$/.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : fail();
    case 'number': {
      const n = Number(t);
      return t !== '' && Number.isFinite(n) ? n : fail();
    }
    case 'boolean': {
      // Python prints True/False.
      const lower = t.toLowerCase();
      return lower === 'true' ? true : lower === 'false' ? false : fail();
    }
    case 'json':
      try {
        return JSON.parse(t);
      } catch {
        return fail();
      }
    default:
      return text;
  }
}
