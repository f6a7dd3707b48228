// ComfyUI v0.8's validation of POST /prompt (execution.py validate_prompt / validate_inputs), the one
// implementation of its rules, with its exact error bodies: class checks, output discovery (and
// partial_execution_targets), per-input conversion as Python's int()/float() would do it, bounds,
// combos, links and their return types, the file loaders' custom validation, exceptions (a link to
// a missing node, a node without `inputs`) reported as `exception_during_validation`, and the
// partial-outputs rule: when one output branch is valid the prompt is accepted and `node_errors`
// names the others. Pure: the prompt and the node definitions in, ComfyUI's answer out. What only
// a running ComfyUI knows (its files, its current model lists) comes in through options; a check
// whose hook is absent is not made, which is how the gateway's submit-time check (certainRejection)
// stays to what ComfyUI would certainly reject.
import {
  ordered,
  PyException,
  PyFloat,
  pyConvert,
  pyKeys,
  pyLessThan,
  pyRepr,
  pySet,
  pyStr,
  pyTypeName,
} from './py-values.ts';

/** ComfyUI's error object: the top-level `error`, and each entry of `node_errors[id].errors`. */
export interface ComfyErrorEntry {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** One node's entry in ComfyUI's `node_errors`. */
export interface ComfyNodeError {
  errors: ComfyErrorEntry[];
  dependent_outputs: string[];
  class_type: unknown;
}

/** ComfyUI's answer: accepted (maybe with node_errors of skipped branches) or rejected. */
export type ComfyValidation =
  | { ok: true; outputs: string[]; nodeErrors: Record<string, ComfyNodeError> }
  | { ok: false; error: ComfyErrorEntry; nodeErrors: Record<string, ComfyNodeError> };

/** What the caller knows beyond the definitions; each absent hook leaves its check unmade. */
export interface ComfyValidationOptions {
  /** ComfyUI's `partial_execution_targets`: only these output nodes count (null or absent: all). */
  partialTargets?: readonly unknown[] | null;
  /**
   * The choices a combo input accepts for `value`: `listed` (the definitions'), the instance's
   * current list, or null to leave the value unchecked (a file the caller holds, a model list that
   * may be stale). Absent: the listed choices.
   */
  comboChoices?: (
    classType: string,
    input: string,
    value: unknown,
    listed: readonly unknown[],
  ) => readonly unknown[] | null;
  /** The file loaders' VALIDATE_INPUTS (LoadImage): whether the named file exists. Absent: not checked. */
  fileExists?: (classType: string, input: string, name: string) => boolean;
  /** Writes converted literal values back into the prompt, as ComfyUI does before it queues it. */
  convertInPlace?: boolean;
  /**
   * False leaves a value the port cannot convert unjudged (no `invalid_input_type`): Python's
   * int()/float() accept forms the port may not know (non-ASCII digits, underscores in floats).
   */
  judgeConversions?: boolean;
  /** Keeps Python's value types (PyFloat, bigint, dict key order) for a byte-exact echo; else plain JSON. */
  pyValues?: boolean;
  /** Iteration order of ComfyUI's output set (the simulator reproduces CPython's); default prompt order. */
  orderOutputs?: (ids: string[]) => string[];
  /** The path tracebacks give execution.py (an install path; default the bare name). */
  executionPy?: string;
}

/** ComfyUI lists combo choices over 20 as "(list of length N)" in its details. */
const COMBO_LIST_SHOWN = 20;
/** Classes whose VALIDATE_INPUTS takes over these inputs (their file check replaces the combo check). */
const CUSTOM_VALIDATION: Record<string, readonly string[]> = {
  LoadImage: ['image'],
  LoadImageMask: ['image'],
};
const WIDGET_TYPES = ['INT', 'FLOAT', 'STRING', 'BOOLEAN'];

type Node = { class_type?: unknown; inputs?: unknown };
type Spec = [unknown, Record<string, unknown>];
type Validated = Map<string, [boolean, ComfyErrorEntry[]]>;
type Frame = [line: number, fn: string, code: string];

/** ComfyUI's error object with empty `extra_info`. */
export function comfyError(type: string, message: string, details = ''): ComfyErrorEntry {
  return { type, message, details, extra_info: {} };
}

/** Link compatibility as ComfyUI's validate_node_input decides it (non-strict): exact, `*`, or a shared member of comma lists. */
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

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof PyFloat);
}

/** An input's spec as ComfyUI reports it in `input_config`: [type, options], and whether it is required. */
function specOf(def: unknown, input: string): { spec: Spec; required: boolean } {
  const sections = isObject(def) && isObject(def.input) ? def.input : {};
  for (const section of ['required', 'optional'] as const) {
    const s = sections[section];
    if (isObject(s) && Object.hasOwn(s, input)) {
      const raw = s[input];
      const spec: Spec = Array.isArray(raw) ? [raw[0], isObject(raw[1]) ? raw[1] : {}] : [raw, {}];
      return { spec, required: section === 'required' };
    }
  }
  return { spec: [undefined, {}], required: false };
}

/** Input names of a class, required then optional, in definition order (definitions never change). */
const inputNamesCache = new WeakMap<object, readonly string[]>();
function inputNames(def: unknown): readonly string[] {
  if (!isObject(def) || !isObject(def.input)) return [];
  let names = inputNamesCache.get(def);
  if (!names) {
    const list: string[] = [];
    for (const section of [def.input.required, def.input.optional])
      if (isObject(section)) list.push(...pyKeys(section));
    names = list;
    inputNamesCache.set(def, names);
  }
  return names;
}

function comboContains(options: readonly unknown[], val: unknown): boolean {
  const key = pyRepr(val);
  return options.some((o) => o === val || pyRepr(o) === key);
}

function asPyException(err: unknown): PyException {
  return err instanceof PyException
    ? err
    : new PyException('Exception', String((err as Error)?.message ?? err));
}

/** One validation of one prompt: the prompt, the definitions, the options and the memo of nodes. */
class Validation {
  readonly #prompt: Record<string, Node>;
  readonly #defs: Readonly<Record<string, unknown>>;
  readonly #options: ComfyValidationOptions;
  readonly validated: Validated = new Map();

  constructor(
    prompt: Record<string, Node>,
    defs: Readonly<Record<string, unknown>>,
    options: ComfyValidationOptions,
  ) {
    this.#prompt = prompt;
    this.#defs = defs;
    this.#options = options;
  }

  /** A dict in Python's key order when exact values are asked for, else a plain object. */
  dict(entries: Array<[string, unknown]>): Record<string, unknown> {
    return this.#options.pyValues ? ordered(entries) : Object.fromEntries(entries);
  }

  /** Traceback lines like ComfyUI's. */
  frames(...frames: Frame[]): string[] {
    const file = this.#options.executionPy ?? 'execution.py';
    return frames.map(([line, fn, code]) => `  File "${file}", line ${line}, in ${fn}\n    ${code}\n`);
  }

  #write(inputs: Record<string, unknown>, x: string, val: unknown): void {
    if (this.#options.convertInPlace) pySet(inputs, x, val);
  }

  /** validate_inputs of one node (memoised); throws PyException where ComfyUI raises. */
  inputs(id: string): [boolean, ComfyErrorEntry[]] {
    const hit = this.validated.get(id);
    if (hit) return hit;
    const prompt = this.#prompt;
    const node = prompt[id] as Node;
    const classType = String(node.class_type);
    const def = this.#defs[classType];
    const names = inputNames(def);
    if (!Object.hasOwn(node, 'inputs'))
      throw new PyException(
        'KeyError',
        "'inputs'",
        this.frames([792, 'validate_inputs', "inputs = prompt[unique_id]['inputs']"]),
      );
    const raw = node.inputs;
    if (!isObject(raw) && names.length > 0 && !Array.isArray(raw) && typeof raw !== 'string')
      throw new PyException(
        'TypeError',
        `argument of type '${pyTypeName(raw)}' is not iterable`,
        this.frames([827, 'validate_inputs', 'if x not in inputs:']),
      );
    const inputs: Record<string, unknown> = isObject(raw) ? raw : {};
    const custom = CUSTOM_VALIDATION[classType] ?? [];
    const errors: ComfyErrorEntry[] = [];
    let valid = true;
    for (const x of names) {
      const { spec, required } = specOf(def, x);
      const [type, extra] = spec;
      if (!Object.hasOwn(inputs, x)) {
        if (required)
          errors.push({
            type: 'required_input_missing',
            message: 'Required input is missing',
            details: x,
            extra_info: this.dict([['input_name', x]]),
          });
        continue;
      }
      let val = inputs[x];
      const badValue = (type: string, message: string) =>
        errors.push({
          type,
          message,
          details: x,
          extra_info: this.dict([
            ['input_name', x],
            ['input_config', spec],
            ['received_value', val],
          ]),
        });
      if (Array.isArray(val)) {
        if (val.length !== 2) {
          badValue('bad_linked_input', 'Bad linked input, must be a length-2 list of [node_id, slot_index]');
          continue;
        }
        const [oId, slot] = val as [unknown, unknown];
        const linked = typeof oId === 'string' && Object.hasOwn(prompt, oId) ? prompt[oId] : undefined;
        if (!isObject(linked))
          throw new PyException(
            'KeyError',
            pyRepr(oId),
            this.frames([818, 'validate_inputs', "o_class_type = prompt[o_id]['class_type']"]),
          );
        const oDef = this.#defs[String(linked.class_type)];
        const outs = isObject(oDef) && Array.isArray(oDef.output) ? (oDef.output as unknown[]) : [];
        if (typeof slot !== 'number' || !Number.isInteger(slot))
          throw new PyException(
            'TypeError',
            `tuple indices must be integers or slices, not ${pyTypeName(slot)}`,
            this.frames([820, 'validate_inputs', 'received_type = r[val[1]]']),
          );
        const receivedType = outs[slot < 0 ? outs.length + slot : slot];
        if (receivedType === undefined)
          throw new PyException(
            'IndexError',
            'tuple index out of range',
            this.frames([820, 'validate_inputs', 'received_type = r[val[1]]']),
          );
        if (!typesCompatible(receivedType, type)) {
          errors.push({
            type: 'return_type_mismatch',
            message: 'Return type mismatch between linked nodes',
            details: `${x}, received_type(${pyStr(receivedType)}) mismatch input_type(${pyStr(type)})`,
            extra_info: this.dict([
              ['input_name', x],
              ['input_config', spec],
              ['received_type', receivedType],
              ['linked_node', val],
            ]),
          });
          continue;
        }
        try {
          if (!this.inputs(oId as string)[0]) valid = false;
        } catch (err) {
          const ex = asPyException(err);
          valid = false;
          this.validated.set(oId as string, [
            false,
            [
              {
                type: 'exception_during_inner_validation',
                message: 'Exception when validating inner node',
                details: ex.message,
                extra_info: this.dict([
                  ['input_name', x],
                  ['input_config', spec],
                  ['exception_message', ex.message],
                  ['exception_type', ex.pyType],
                  [
                    'traceback',
                    [
                      ...this.frames([
                        836,
                        'validate_inputs',
                        'r = await validate_inputs(prompt_id, prompt, o_id, validated)',
                      ]),
                      ...ex.frames,
                    ],
                  ],
                  ['linked_node', val],
                ]),
              },
            ],
          ]);
        }
        continue;
      }
      try {
        if (isObject(val) && Object.hasOwn(val, '__value__')) {
          val = val.__value__;
          this.#write(inputs, x, val);
        }
        if (typeof type === 'string' && WIDGET_TYPES.includes(type)) {
          val = pyConvert(type, val, this.#options.pyValues === true);
          this.#write(inputs, x, val);
        }
      } catch (err) {
        if (this.#options.judgeConversions === false) continue;
        const ex = asPyException(err);
        errors.push({
          type: 'invalid_input_type',
          message: `Failed to convert an input value to a ${pyStr(type)} value`,
          details: `${x}, ${pyStr(val)}, ${ex.message}`,
          extra_info: this.dict([
            ['input_name', x],
            ['input_config', spec],
            ['received_value', val],
            ['exception_message', ex.message],
          ]),
        });
        continue;
      }
      if (custom.includes(x)) continue;
      if ('min' in extra && pyLessThan(val, extra.min)) {
        badValue('value_smaller_than_min', `Value ${pyStr(val)} smaller than min of ${pyStr(extra.min)}`);
        continue;
      }
      if ('max' in extra && pyLessThan(extra.max, val)) {
        badValue('value_bigger_than_max', `Value ${pyStr(val)} bigger than max of ${pyStr(extra.max)}`);
        continue;
      }
      if (Array.isArray(type) || type === 'COMBO') {
        const listed = (
          Array.isArray(type) ? type : Array.isArray(extra.options) ? extra.options : []
        ) as unknown[];
        const options = this.#options.comboChoices
          ? this.#options.comboChoices(classType, x, val, listed)
          : listed;
        if (options === null) continue;
        const invalid =
          extra.multiselect === true && Array.isArray(val)
            ? val.filter((v) => !comboContains(options, v))
            : comboContains(options, val)
              ? []
              : [val];
        if (invalid.length > 0) {
          const big = options.length > COMBO_LIST_SHOWN;
          errors.push({
            type: 'value_not_in_list',
            message: 'Value not in list',
            details: `${x}: '${pyStr(val)}' not in ${big ? `(list of length ${options.length})` : pyStr(options)}`,
            extra_info: this.dict([
              ['input_name', x],
              ['input_config', big ? null : spec],
              ['received_value', val],
            ]),
          });
        }
      }
    }
    // VALIDATE_INPUTS of the file loaders: the file must exist where the prompt runs.
    const fileExists = this.#options.fileExists;
    for (const x of fileExists ? custom : []) {
      if (!Object.hasOwn(inputs, x) || Array.isArray(inputs[x])) continue;
      const v = pyStr(inputs[x]);
      if (!fileExists?.(classType, x, v)) {
        errors.push({
          type: 'custom_validation_failed',
          message: 'Custom validation failed for node',
          details: `${x} - Invalid image file: ${v}`,
          extra_info: this.dict([['input_name', x]]),
        });
      }
    }
    const result: [boolean, ComfyErrorEntry[]] = errors.length > 0 || !valid ? [false, errors] : [true, []];
    this.validated.set(id, result);
    return result;
  }
}

function reject(error: ComfyErrorEntry): ComfyValidation {
  return { ok: false, error, nodeErrors: {} };
}

/**
 * Validates `prompt` as ComfyUI's POST /prompt would, over `defs` (/object_info), and returns its
 * answer; converted literal values are written back only with `convertInPlace`.
 */
export function validateComfyPrompt(
  prompt: Record<string, unknown>,
  defs: Readonly<Record<string, unknown>>,
  options: ComfyValidationOptions = {},
): ComfyValidation {
  const targets = options.partialTargets;
  const outputs: string[] = [];
  for (const id of pyKeys(prompt)) {
    const node = prompt[id];
    if (!isObject(node) || !Object.hasOwn(node, 'class_type')) {
      return reject(
        comfyError(
          'invalid_prompt',
          'Cannot execute because a node is missing the class_type property.',
          `Node ID '#${id}'`,
        ),
      );
    }
    const classType = node.class_type;
    const def = typeof classType === 'string' && Object.hasOwn(defs, classType) ? defs[classType] : undefined;
    if (!isObject(def)) {
      return reject(
        comfyError(
          'invalid_prompt',
          `Cannot execute because node ${pyStr(classType)} does not exist.`,
          `Node ID '#${id}'`,
        ),
      );
    }
    if (def.output_node === true && (!targets || targets.includes(id))) outputs.push(id);
  }
  if (outputs.length === 0) return reject(comfyError('prompt_no_outputs', 'Prompt has no outputs'));

  const order = options.orderOutputs ?? ((ids: string[]) => ids);
  const run = new Validation(prompt as Record<string, Node>, defs, options);
  const good: string[] = [];
  const failed: Array<[string, ComfyErrorEntry[]]> = [];
  const nodeErrors = new Map<string, ComfyNodeError>();
  // ComfyUI collects the outputs in a set and iterates it: its order decides node_errors' order.
  for (const o of order(outputs)) {
    let valid: boolean;
    let reasons: ComfyErrorEntry[];
    try {
      [valid, reasons] = run.inputs(o);
    } catch (err) {
      const ex = asPyException(err);
      valid = false;
      reasons = [
        {
          type: 'exception_during_validation',
          message: 'Exception when validating node',
          details: ex.message,
          extra_info: run.dict([
            ['exception_type', ex.pyType],
            [
              'traceback',
              [
                ...run.frames([
                  1043,
                  'validate_prompt',
                  'm = await validate_inputs(prompt_id, prompt, o, validated)',
                ]),
                ...ex.frames,
              ],
            ],
          ]),
        },
      ];
      run.validated.set(o, [false, reasons]);
    }
    if (valid) {
      good.push(o);
      continue;
    }
    failed.push([o, reasons]);
    // ComfyUI's loop: every node validated so far with errors counts this output as dependent.
    for (const [nodeId, [ok, rs]] of run.validated) {
      if (ok || rs.length === 0) continue;
      let entry = nodeErrors.get(nodeId);
      if (!entry) {
        entry = { errors: rs, dependent_outputs: [], class_type: (prompt[nodeId] as Node).class_type };
        nodeErrors.set(nodeId, entry);
      }
      entry.dependent_outputs.push(o);
    }
  }
  const errorsByNode = run.dict(
    [...nodeErrors].map(([id, e]) => [id, run.dict(Object.entries(e))]),
  ) as Record<string, ComfyNodeError>;
  if (good.length > 0) return { ok: true, outputs: order(good), nodeErrors: errorsByNode };
  const details = failed.flatMap(([, rs]) => rs.map((r) => `${r.message}: ${r.details}`)).join('\n');
  return {
    ok: false,
    error: comfyError('prompt_outputs_failed_validation', 'Prompt outputs failed validation', details),
    nodeErrors: errorsByNode,
  };
}
