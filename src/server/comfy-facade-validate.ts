// ComfyUI v0.8's validation of POST /prompt (execution.py validate_prompt / validate_inputs),
// ported for the native facade over the pool's node definitions, with its exact error bodies:
// class checks, output discovery (and partial_execution_targets), per-input type conversion as
// Python's int()/float() would do it, bounds, combos, links and their return types, LoadImage's
// file check, exceptions (a link to a missing node, a node without `inputs`) reported as
// `exception_during_validation`, and the partial-outputs rule: when one output branch is valid the
// prompt is accepted and `node_errors` names the others.

/** ComfyUI's top-level error object. */
export interface ComfyErrorBody {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** One node's entry in ComfyUI's `node_errors`. */
export interface ComfyNodeError {
  errors: ComfyErrorBody[];
  dependent_outputs: string[];
  class_type: unknown;
}

/** Outcome of validation: accepted (maybe with node_errors of skipped branches) or rejected. */
export type FacadeValidation =
  | { ok: true; nodeErrors: Record<string, ComfyNodeError>; outputs: string[] }
  | { ok: false; error: ComfyErrorBody; nodeErrors: Record<string, ComfyNodeError> };

/**
 * What the facade knows about a file input's value (uploads it holds, files the instances list):
 * 'known', 'missing', or 'not_a_file' for inputs that take no file.
 */
export type FileCheck = (
  classType: string,
  input: string,
  value: unknown,
) => 'known' | 'missing' | 'not_a_file';

/** Builds ComfyUI's error body. */
export function comfyError(type: string, message: string, details = ''): ComfyErrorBody {
  return { type, message, details, extra_info: {} };
}

/** Classes whose VALIDATE_INPUTS takes over these inputs (their file check replaces the combo check). */
const CUSTOM_VALIDATION: Record<string, string[]> = { LoadImage: ['image'], LoadImageMask: ['image'] };
const WIDGET_TYPES = ['INT', 'FLOAT', 'STRING', 'BOOLEAN'];

type Node = { class_type?: unknown; inputs?: unknown };
type Spec = [unknown, Record<string, unknown>];
type Validated = Map<string, [boolean, ComfyErrorBody[]]>;

/** A Python exception: its type name and str(). */
class PyError extends Error {
  readonly pyType: string;
  readonly frames: string[];
  constructor(pyType: string, message: string, frames: string[] = []) {
    super(message);
    this.pyType = pyType;
    this.frames = frames;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Python's repr() of a JSON value. */
function pyRepr(v: unknown): string {
  if (typeof v === 'string') {
    const quote = v.includes("'") && !v.includes('"') ? '"' : "'";
    const body = v
      .replaceAll('\\', '\\\\')
      .replaceAll('\n', '\\n')
      .replaceAll('\r', '\\r')
      .replaceAll('\t', '\\t');
    return quote + (quote === "'" ? body.replaceAll("'", "\\'") : body) + quote;
  }
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object')
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  return String(v);
}

/** Python's str() of a JSON value. */
function pyStr(v: unknown): string {
  return typeof v === 'string' ? v : pyRepr(v);
}

function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'dict';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  return typeof v === 'boolean' ? 'bool' : 'str';
}

/** The conversion ComfyUI applies to a widget value (`int(val)`, `float(val)`, …). */
function convert(type: string, val: unknown): unknown {
  if (type === 'INT') {
    if (typeof val === 'boolean') return val ? 1 : 0;
    if (typeof val === 'number') {
      if (Number.isNaN(val)) throw new PyError('ValueError', 'cannot convert float NaN to integer');
      if (!Number.isFinite(val))
        throw new PyError('OverflowError', 'cannot convert float infinity to integer');
      return Math.trunc(val);
    }
    if (typeof val === 'string') {
      const s = val.trim().replaceAll('_', '');
      if (/^[-+]?\d+$/.test(s)) return Number(s);
      throw new PyError('ValueError', `invalid literal for int() with base 10: ${pyRepr(val)}`);
    }
    throw new PyError(
      'TypeError',
      `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(val)}'`,
    );
  }
  if (type === 'FLOAT') {
    if (typeof val === 'boolean') return val ? 1 : 0;
    if (typeof val === 'number') return val;
    if (typeof val === 'string') {
      const s = val.trim().toLowerCase();
      if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/.test(s)) return Number(s);
      if (/^[-+]?(inf|infinity)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
      if (/^[-+]?nan$/.test(s)) return Number.NaN;
      throw new PyError('ValueError', `could not convert string to float: ${pyRepr(val)}`);
    }
    throw new PyError(
      'TypeError',
      `float() argument must be a string or a real number, not '${pyTypeName(val)}'`,
    );
  }
  if (type === 'STRING') return pyStr(val);
  if (type === 'BOOLEAN') {
    if (Array.isArray(val) || typeof val === 'string') return val.length > 0;
    if (isObject(val)) return Object.keys(val).length > 0;
    return Boolean(val);
  }
  return val;
}

/** An input's spec as ComfyUI reports it in `input_config`: [type, options]. */
function specOf(def: unknown, input: string): { spec: Spec; required: boolean } | undefined {
  if (!isObject(def) || !isObject(def.input)) return undefined;
  for (const section of ['required', 'optional'] as const) {
    const s = def.input[section];
    if (isObject(s) && Object.hasOwn(s, input)) {
      const raw = s[input];
      const spec: Spec = Array.isArray(raw) ? [raw[0], isObject(raw[1]) ? raw[1] : {}] : [raw, {}];
      return { spec, required: section === 'required' };
    }
  }
  return undefined;
}

function inputNames(def: unknown): string[] {
  if (!isObject(def) || !isObject(def.input)) return [];
  const names: string[] = [];
  for (const section of ['required', 'optional']) {
    const s = def.input[section];
    if (isObject(s)) names.push(...Object.keys(s));
  }
  return names;
}

/** validate_node_input: `*` and comma-separated type lists match loosely. */
function typesCompatible(received: unknown, wanted: unknown): boolean {
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

function comboContains(options: unknown[], val: unknown): boolean {
  const key = pyRepr(val);
  return options.some((o) => o === val || pyRepr(o) === key);
}

/** Traceback lines like ComfyUI's (its own file and line, without the install path). */
function frame(line: number, fn: string, code: string): string {
  return `  File "execution.py", line ${line}, in ${fn}\n    ${code}\n`;
}

/**
 * Validates `prompt` as ComfyUI's POST /prompt would, over `defs` (the pool's /object_info).
 * Literal widget values are converted in place, as ComfyUI does before it queues the prompt.
 */
export function validateForFacade(
  prompt: Record<string, unknown>,
  defs: Record<string, unknown>,
  fileCheck: FileCheck,
  partialTargets?: unknown,
): FacadeValidation {
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    if (!isObject(node) || !Object.hasOwn(node, 'class_type')) {
      return reject(
        comfyError(
          'invalid_prompt',
          'Cannot execute because a node is missing the class_type property.',
          `Node ID '#${id}'`,
        ),
      );
    }
    const def = typeof node.class_type === 'string' ? defs[node.class_type] : undefined;
    if (!isObject(def) || !Object.hasOwn(defs, String(node.class_type))) {
      return reject(
        comfyError(
          'invalid_prompt',
          `Cannot execute because node ${pyStr(node.class_type)} does not exist.`,
          `Node ID '#${id}'`,
        ),
      );
    }
    const targeted = !Array.isArray(partialTargets) || partialTargets.includes(id);
    if (def.output_node === true && targeted) outputs.push(id);
  }
  if (outputs.length === 0) return reject(comfyError('prompt_no_outputs', 'Prompt has no outputs'));

  const nodes = prompt as Record<string, Node>;
  const validated: Validated = new Map();
  const good: string[] = [];
  const failed: Array<[string, ComfyErrorBody[]]> = [];
  const nodeErrors: Record<string, ComfyNodeError> = {};
  for (const o of outputs) {
    let valid: boolean;
    let reasons: ComfyErrorBody[];
    try {
      [valid, reasons] = validateInputs(nodes, o, validated, defs, fileCheck);
    } catch (err) {
      const ex = asPyError(err);
      valid = false;
      reasons = [
        {
          type: 'exception_during_validation',
          message: 'Exception when validating node',
          details: ex.message,
          extra_info: {
            exception_type: ex.pyType,
            traceback: [
              frame(1043, 'validate_prompt', 'm = await validate_inputs(prompt_id, prompt, o, validated)'),
              ...ex.frames,
            ],
          },
        },
      ];
      validated.set(o, [false, reasons]);
    }
    if (valid) {
      good.push(o);
      continue;
    }
    failed.push([o, reasons]);
    // ComfyUI's loop: every node validated so far with errors counts this output as dependent.
    for (const [nodeId, [ok, rs]] of validated) {
      if (ok || rs.length === 0) continue;
      nodeErrors[nodeId] ??= { errors: rs, dependent_outputs: [], class_type: nodes[nodeId]?.class_type };
      nodeErrors[nodeId].dependent_outputs.push(o);
    }
  }
  if (good.length > 0) return { ok: true, nodeErrors, outputs: good };
  const details = failed.flatMap(([, rs]) => rs.map((r) => `${r.message}: ${r.details}`)).join('\n');
  return {
    ok: false,
    error: comfyError('prompt_outputs_failed_validation', 'Prompt outputs failed validation', details),
    nodeErrors,
  };
}

function asPyError(err: unknown): PyError {
  return err instanceof PyError ? err : new PyError('Exception', String((err as Error)?.message ?? err));
}

function reject(error: ComfyErrorBody): FacadeValidation {
  return { ok: false, error, nodeErrors: {} };
}

/** validate_inputs of one node (memoised in `validated`); throws PyError where ComfyUI raises. */
function validateInputs(
  prompt: Record<string, Node>,
  id: string,
  validated: Validated,
  defs: Record<string, unknown>,
  fileCheck: FileCheck,
): [boolean, ComfyErrorBody[]] {
  const hit = validated.get(id);
  if (hit) return hit;
  const node = prompt[id] as Node;
  const classType = String(node.class_type);
  const def = defs[classType];
  const names = inputNames(def);
  if (!Object.hasOwn(node, 'inputs'))
    throw new PyError('KeyError', "'inputs'", [
      frame(792, 'validate_inputs', "inputs = prompt[unique_id]['inputs']"),
    ]);
  const raw = node.inputs;
  if (!isObject(raw) && names.length > 0 && !Array.isArray(raw) && typeof raw !== 'string')
    throw new PyError('TypeError', `argument of type '${pyTypeName(raw)}' is not iterable`, [
      frame(827, 'validate_inputs', 'if x not in inputs:'),
    ]);
  const inputs: Record<string, unknown> = isObject(raw) ? raw : {};
  const custom = CUSTOM_VALIDATION[classType] ?? [];
  const errors: ComfyErrorBody[] = [];
  let valid = true;
  for (const x of names) {
    const { spec, required } = specOf(def, x) as { spec: Spec; required: boolean };
    const [type, extra] = spec;
    if (!Object.hasOwn(inputs, x)) {
      if (required)
        errors.push({
          type: 'required_input_missing',
          message: 'Required input is missing',
          details: x,
          extra_info: { input_name: x },
        });
      continue;
    }
    let val = inputs[x];
    if (Array.isArray(val)) {
      if (val.length !== 2) {
        errors.push({
          type: 'bad_linked_input',
          message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
          details: x,
          extra_info: { input_name: x, input_config: spec, received_value: val },
        });
        continue;
      }
      const [oId, slot] = val as [unknown, unknown];
      const linked = typeof oId === 'string' ? prompt[oId] : undefined;
      if (typeof oId !== 'string' || !Object.hasOwn(prompt, oId) || !isObject(linked))
        throw new PyError('KeyError', pyRepr(oId), [
          frame(818, 'validate_inputs', "o_class_type = prompt[o_id]['class_type']"),
        ]);
      const outs = (defs[String(linked.class_type)] as { output?: unknown[] } | undefined)?.output ?? [];
      if (typeof slot !== 'number' || !Number.isInteger(slot))
        throw new PyError('TypeError', `tuple indices must be integers or slices, not ${pyTypeName(slot)}`, [
          frame(820, 'validate_inputs', 'received_type = r[val[1]]'),
        ]);
      const receivedType = outs[slot < 0 ? outs.length + slot : slot];
      if (receivedType === undefined)
        throw new PyError('IndexError', 'tuple index out of range', [
          frame(820, 'validate_inputs', 'received_type = r[val[1]]'),
        ]);
      if (!typesCompatible(receivedType, type)) {
        errors.push({
          type: 'return_type_mismatch',
          message: 'Return type mismatch between linked nodes',
          details: `${x}, received_type(${pyStr(receivedType)}) mismatch input_type(${pyStr(type)})`,
          extra_info: { input_name: x, input_config: spec, received_type: receivedType, linked_node: val },
        });
        continue;
      }
      try {
        if (!validateInputs(prompt, oId, validated, defs, fileCheck)[0]) valid = false;
      } catch (err) {
        const ex = asPyError(err);
        valid = false;
        validated.set(oId, [
          false,
          [
            {
              type: 'exception_during_inner_validation',
              message: 'Exception when validating inner node',
              details: ex.message,
              extra_info: {
                input_name: x,
                input_config: spec,
                exception_message: ex.message,
                exception_type: ex.pyType,
                traceback: [
                  frame(
                    836,
                    'validate_inputs',
                    'r = await validate_inputs(prompt_id, prompt, o_id, validated)',
                  ),
                  ...ex.frames,
                ],
                linked_node: val,
              },
            },
          ],
        ]);
      }
      continue;
    }
    try {
      if (isObject(val) && Object.hasOwn(val, '__value__')) {
        val = val.__value__;
        inputs[x] = val;
      }
      if (typeof type === 'string' && WIDGET_TYPES.includes(type)) {
        val = convert(type, val);
        inputs[x] = val;
      }
    } catch (err) {
      const ex = asPyError(err);
      errors.push({
        type: 'invalid_input_type',
        message: `Failed to convert an input value to a ${pyStr(type)} value`,
        details: `${x}, ${pyStr(val)}, ${ex.message}`,
        extra_info: { input_name: x, input_config: spec, received_value: val, exception_message: ex.message },
      });
      continue;
    }
    if (custom.includes(x)) continue;
    if ('min' in extra && typeof val === 'number' && typeof extra.min === 'number' && val < extra.min) {
      errors.push({
        type: 'value_smaller_than_min',
        message: `Value ${pyStr(val)} smaller than min of ${pyStr(extra.min)}`,
        details: x,
        extra_info: { input_name: x, input_config: spec, received_value: val },
      });
      continue;
    }
    if ('max' in extra && typeof val === 'number' && typeof extra.max === 'number' && val > extra.max) {
      errors.push({
        type: 'value_bigger_than_max',
        message: `Value ${pyStr(val)} bigger than max of ${pyStr(extra.max)}`,
        details: x,
        extra_info: { input_name: x, input_config: spec, received_value: val },
      });
      continue;
    }
    if (Array.isArray(type) || type === 'COMBO') {
      const options = (
        Array.isArray(type) ? type : Array.isArray(extra.options) ? extra.options : []
      ) as unknown[];
      const file = fileCheck(classType, x, val);
      // A file the facade holds (or an instance lists) is a valid choice though no instance lists it yet.
      if (file === 'known') continue;
      // An empty list is a model folder the answering instance has nothing in; others may.
      if (options.length === 0 && file === 'not_a_file') continue;
      const invalid =
        extra.multiselect === true && Array.isArray(val)
          ? val.filter((v) => !comboContains(options, v))
          : comboContains(options, val)
            ? []
            : [val];
      if (invalid.length > 0) {
        const big = options.length > 20;
        errors.push({
          type: 'value_not_in_list',
          message: 'Value not in list',
          details: `${x}: '${pyStr(val)}' not in ${big ? `(list of length ${options.length})` : pyStr(options)}`,
          extra_info: { input_name: x, input_config: big ? null : spec, received_value: val },
        });
      }
    }
  }
  // VALIDATE_INPUTS of the loaders: the file must exist (uploaded through the facade or listed).
  for (const x of custom) {
    if (!Object.hasOwn(inputs, x) || Array.isArray(inputs[x])) continue;
    const v = pyStr(inputs[x]);
    if (fileCheck(classType, x, v) === 'missing') {
      errors.push({
        type: 'custom_validation_failed',
        message: 'Custom validation failed for node',
        details: `${x} - Invalid image file: ${v}`,
        extra_info: { input_name: x },
      });
    }
  }
  const result: [boolean, ComfyErrorBody[]] = errors.length > 0 || !valid ? [false, errors] : [true, []];
  validated.set(id, result);
  return result;
}
