// Prompt validation with ComfyUI v0.8.0's rules and exact error bodies (execution.py validate_prompt /
// validate_inputs): class checks, output discovery, per-input type coercion written back into the
// prompt, bounds, combos, links and their return types, custom validation (LoadImage's file check).
// The rules ComfyUI applies live once in the workflow module (pure, no I/O); the gateway's
// submit-time check uses the same ones.
import { COMBO_LIST_SHOWN, COMFY_MESSAGES, typesCompatible } from '../workflow/comfy-rules.ts';
import { type InputSpec, inputSpec, type NodeDef, nodeDef } from './object-info.ts';
import { ordered, PyFloat, pyKeys, pySet, toNumber } from './py-json.ts';
import { pyRepr, pyStr } from './py-repr.ts';
import { PyStrHash } from './py-set.ts';

/** One API-format node as submitted. */
export interface PromptNode {
  class_type?: unknown;
  inputs?: Record<string, unknown>;
  [key: string]: unknown;
}
/** An API-format prompt: node id -> node. */
export type Prompt = Record<string, PromptNode>;

/** One validation error as ComfyUI reports it. */
export interface ValidationError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** Result of validating a prompt. */
export type ValidationResult =
  | { ok: true; outputs: string[]; nodeErrors: Record<string, unknown> }
  | { ok: false; error: ValidationError; nodeErrors: Record<string, unknown> };

/** Hooks that need the instance's state (files on disk, lenient model lists). */
export interface ValidationContext {
  /** True when a LoadImage-style reference (`name`, `sub/name`, `name [output]`) exists. */
  annotatedFileExists(name: string): boolean;
  /** Accept any value for combos whose recorded option list is empty (model file lists). */
  lenientEmptyCombos: boolean;
  /** Current options of a dynamic combo (e.g. LoadImage's input files), or undefined to use the recorded list. */
  dynamicCombo(classType: string, input: string): string[] | undefined;
}

/** Classes with a VALIDATE_INPUTS hook, and the inputs it takes over. */
/**
 * The string hashing of the simulated ComfyUI process: PYTHONHASHSEED=4471 is a seed under which
 * CPython 3.11 orders every recorded prompt's output set as the recorded server did.
 */
const OUTPUT_ORDER = new PyStrHash(4471);

const CUSTOM_VALIDATION: Record<string, string[]> = { LoadImage: ['image'], LoadImageMask: ['image'] };

class PyException extends Error {
  readonly pyType: string;
  constructor(pyType: string, message: string) {
    super(message);
    this.pyType = pyType;
  }
}

const FAKE_TB = (frames: Array<[string, number, string, string]>): string[] =>
  frames.map(
    ([file, line, fn, code]) =>
      `  File "/opt/comfyui-simulator/${file}", line ${line}, in ${fn}\n    ${code}\n`,
  );

type Validated = Map<string, [boolean, ValidationError[]]>;

function isOutputNode(def: NodeDef): boolean {
  return def.output_node === true;
}

function specType(spec: InputSpec): string | unknown[] {
  return spec[0];
}

function specOptions(spec: InputSpec): Record<string, unknown> {
  return spec[1] ?? {};
}

function inputConfig(spec: InputSpec): unknown[] {
  return [specType(spec), specOptions(spec)];
}

function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object' && !(v instanceof PyFloat)) return 'dict';
  return typeof v;
}

function coerce(type: string, val: unknown): unknown {
  if (type === 'INT') {
    if (typeof val === 'boolean') return val ? 1 : 0;
    if (typeof val === 'bigint') return val;
    const n = toNumber(val);
    if (n !== undefined) {
      if (Number.isNaN(n)) throw new PyException('ValueError', 'cannot convert float NaN to integer');
      if (!Number.isFinite(n))
        throw new PyException('OverflowError', 'cannot convert float infinity to integer');
      return Math.trunc(n);
    }
    if (typeof val === 'string') {
      const s = val.trim().replaceAll('_', '');
      if (/^[-+]?\d+$/.test(s)) {
        const b = BigInt(s);
        return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
      }
      throw new PyException('ValueError', `invalid literal for int() with base 10: ${pyRepr(val)}`);
    }
    throw new PyException(
      'TypeError',
      `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(val)}'`,
    );
  }
  if (type === 'FLOAT') {
    if (typeof val === 'boolean') return new PyFloat(val ? 1 : 0);
    const n = toNumber(val);
    if (n !== undefined) return new PyFloat(n);
    if (typeof val === 'string') {
      const s = val.trim().toLowerCase();
      if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/.test(s)) return new PyFloat(Number(s));
      if (/^[-+]?(inf|infinity)$/.test(s)) return new PyFloat(s.startsWith('-') ? -Infinity : Infinity);
      if (/^[-+]?nan$/.test(s)) return new PyFloat(Number.NaN);
      throw new PyException('ValueError', `could not convert string to float: ${pyRepr(val)}`);
    }
    throw new PyException(
      'TypeError',
      `float() argument must be a string or a real number, not '${pyTypeName(val)}'`,
    );
  }
  if (type === 'STRING') return pyStr(val);
  if (type === 'BOOLEAN') {
    if (typeof val === 'string') return val.length > 0;
    if (Array.isArray(val)) return val.length > 0;
    if (val !== null && typeof val === 'object' && !(val instanceof PyFloat)) return pyKeys(val).length > 0;
    const n = toNumber(val);
    if (n !== undefined) return n !== 0;
    return Boolean(val);
  }
  return val;
}

function lessThan(a: unknown, b: unknown): boolean {
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const na = toNumber(a);
    const nb = toNumber(b);
    if (typeof a === 'bigint' && typeof b === 'number' && Number.isInteger(b)) return a < BigInt(b);
    if (typeof b === 'bigint' && typeof a === 'number' && Number.isInteger(a)) return BigInt(a) < b;
    return (na ?? 0) < (nb ?? 0);
  }
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na === undefined || nb === undefined) return false;
  return na < nb;
}

function comboContains(options: unknown[], val: unknown): boolean {
  const key = pyRepr(val);
  return options.some((o) => o === val || pyRepr(o) === key);
}

/** Input names of a class, required then optional, in the recorded order (defs never change). */
const inputNamesCache = new WeakMap<NodeDef, readonly string[]>();
function inputNames(def: NodeDef): readonly string[] {
  let names = inputNamesCache.get(def);
  if (!names) {
    names = [...pyKeys(def.input.required ?? {}), ...pyKeys(def.input.optional ?? {})];
    inputNamesCache.set(def, names);
  }
  return names;
}

// Synchronous, though ComfyUI's validate_inputs is a coroutine: nothing here waits, and the order of
// checks and of the coerced values written back is the same.
function validateInputs(
  prompt: Prompt,
  id: string,
  validated: Validated,
  ctx: ValidationContext,
): [boolean, ValidationError[]] {
  const hit = validated.get(id);
  if (hit) return hit;
  const node = prompt[id]!;
  if (node.inputs === undefined || node.inputs === null || typeof node.inputs !== 'object') {
    throw new PyException('KeyError', "'inputs'");
  }
  const inputs = node.inputs;
  const classType = node.class_type as string;
  const def = nodeDef(classType)!;
  const customInputs = CUSTOM_VALIDATION[classType] ?? [];
  const names = inputNames(def);
  const errors: ValidationError[] = [];
  let valid = true;
  for (const x of names) {
    const found = inputSpec(def, x)!;
    const spec = found.spec;
    const type = specType(spec);
    const extra = specOptions(spec);
    if (!Object.hasOwn(inputs, x)) {
      if (found.kind === 'required') {
        errors.push({
          type: 'required_input_missing',
          message: COMFY_MESSAGES.required_input_missing,
          details: x,
          extra_info: ordered([['input_name', x]]),
        });
      }
      continue;
    }
    let val = inputs[x];
    if (Array.isArray(val)) {
      if (val.length !== 2) {
        errors.push({
          type: 'bad_linked_input',
          message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]',
          details: x,
          extra_info: ordered([
            ['input_name', x],
            ['input_config', inputConfig(spec)],
            ['received_value', val],
          ]),
        });
        continue;
      }
      const [oId, slot] = val as [unknown, unknown];
      if (typeof oId !== 'string' || !Object.hasOwn(prompt, oId))
        throw new PyException('KeyError', pyRepr(oId));
      const oDef = nodeDef(prompt[oId]!.class_type as string)!;
      if (typeof slot !== 'number' || !Number.isInteger(slot)) {
        throw new PyException(
          'TypeError',
          `tuple indices must be integers or slices, not ${pyTypeName(slot)}`,
        );
      }
      const receivedType = oDef.output[slot < 0 ? oDef.output.length + slot : slot];
      if (receivedType === undefined) throw new PyException('IndexError', 'tuple index out of range');
      if (!typesCompatible(receivedType, type)) {
        errors.push({
          type: 'return_type_mismatch',
          message: COMFY_MESSAGES.return_type_mismatch,
          details: `${x}, received_type(${pyStr(receivedType)}) mismatch input_type(${pyStr(type)})`,
          extra_info: ordered([
            ['input_name', x],
            ['input_config', inputConfig(spec)],
            ['received_type', receivedType],
            ['linked_node', val],
          ]),
        });
        continue;
      }
      try {
        const r = validateInputs(prompt, oId, validated, ctx);
        if (!r[0]) valid = false;
      } catch (err) {
        valid = false;
        const ex = err instanceof PyException ? err : new PyException('Exception', String(err));
        validated.set(oId, [
          false,
          [
            {
              type: 'exception_during_inner_validation',
              message: 'Exception when validating inner node',
              details: ex.message,
              extra_info: ordered([
                ['input_name', x],
                ['input_config', inputConfig(spec)],
                ['exception_message', ex.message],
                ['exception_type', ex.pyType],
                [
                  'traceback',
                  FAKE_TB([['execution.py', 836, 'validate_inputs', 'r = await validate_inputs(...)']]),
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
      if (
        val !== null &&
        typeof val === 'object' &&
        !(val instanceof PyFloat) &&
        Object.hasOwn(val, '__value__')
      ) {
        val = (val as Record<string, unknown>).__value__;
        pySet(inputs, x, val);
      }
      if (typeof type === 'string' && ['INT', 'FLOAT', 'STRING', 'BOOLEAN'].includes(type)) {
        val = coerce(type, val);
        pySet(inputs, x, val);
      }
    } catch (err) {
      const ex = err as PyException;
      errors.push({
        type: 'invalid_input_type',
        message: `Failed to convert an input value to a ${pyStr(type)} value`,
        details: `${x}, ${pyStr(val)}, ${ex.message}`,
        extra_info: ordered([
          ['input_name', x],
          ['input_config', inputConfig(spec)],
          ['received_value', val],
          ['exception_message', ex.message],
        ]),
      });
      continue;
    }
    if (customInputs.includes(x)) continue;
    if ('min' in extra && lessThan(val, extra.min)) {
      errors.push({
        type: 'value_smaller_than_min',
        message: COMFY_MESSAGES.value_smaller_than_min(pyStr(val), pyStr(extra.min)),
        details: x,
        extra_info: ordered([
          ['input_name', x],
          ['input_config', inputConfig(spec)],
          ['received_value', val],
        ]),
      });
      continue;
    }
    if ('max' in extra && lessThan(extra.max, val)) {
      errors.push({
        type: 'value_bigger_than_max',
        message: COMFY_MESSAGES.value_bigger_than_max(pyStr(val), pyStr(extra.max)),
        details: x,
        extra_info: ordered([
          ['input_name', x],
          ['input_config', inputConfig(spec)],
          ['received_value', val],
        ]),
      });
      continue;
    }
    if (Array.isArray(type) || type === 'COMBO') {
      const recorded = (
        Array.isArray(type) ? type : ((extra.options as unknown[] | undefined) ?? [])
      ) as unknown[];
      const options = ctx.dynamicCombo(classType, x) ?? recorded;
      if (recorded.length === 0 && options.length === 0 && ctx.lenientEmptyCombos) continue;
      const multiselect = extra.multiselect === true;
      const invalid =
        multiselect && Array.isArray(val)
          ? val.filter((v) => !comboContains(options, v))
          : comboContains(options, val)
            ? []
            : [val];
      if (invalid.length > 0) {
        const big = options.length > COMBO_LIST_SHOWN;
        errors.push({
          type: 'value_not_in_list',
          message: COMFY_MESSAGES.value_not_in_list,
          details: `${x}: '${pyStr(val)}' not in ${big ? `(list of length ${options.length})` : pyStr(options)}`,
          extra_info: ordered([
            ['input_name', x],
            ['input_config', big ? null : inputConfig(spec)],
            ['received_value', val],
          ]),
        });
      }
    }
  }
  for (const x of customInputs) {
    if (!Object.hasOwn(inputs, x) || Array.isArray(inputs[x])) continue;
    const v = pyStr(inputs[x]);
    if (!ctx.annotatedFileExists(v)) {
      errors.push({
        type: 'custom_validation_failed',
        message: 'Custom validation failed for node',
        details: `${x} - Invalid image file: ${v}`,
        extra_info: ordered([['input_name', x]]),
      });
    }
  }
  const ret: [boolean, ValidationError[]] = errors.length > 0 || !valid ? [false, errors] : [true, []];
  validated.set(id, ret);
  return ret;
}

/** Validates a prompt (mutating literal inputs to their coerced values, as ComfyUI does). */
export function validatePrompt(
  prompt: Prompt,
  partialTargets: string[] | null,
  ctx: ValidationContext,
): ValidationResult {
  const outputs: string[] = [];
  for (const x of pyKeys(prompt)) {
    const node = prompt[x];
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, 'class_type')) {
      return {
        ok: false,
        error: {
          type: 'invalid_prompt',
          message: 'Cannot execute because a node is missing the class_type property.',
          details: `Node ID '#${x}'`,
          extra_info: {},
        },
        nodeErrors: {},
      };
    }
    const classType = node.class_type;
    const def = typeof classType === 'string' ? nodeDef(classType) : undefined;
    if (!def) {
      return {
        ok: false,
        error: {
          type: 'invalid_prompt',
          message: `Cannot execute because node ${pyStr(classType)} does not exist.`,
          details: `Node ID '#${x}'`,
          extra_info: {},
        },
        nodeErrors: {},
      };
    }
    if (isOutputNode(def) && (partialTargets === null || partialTargets.includes(x))) outputs.push(x);
  }
  if (outputs.length === 0) {
    return {
      ok: false,
      error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} },
      nodeErrors: {},
    };
  }
  // ComfyUI collects outputs in a set and iterates it: its order decides which ready output runs first.
  const outputSet = OUTPUT_ORDER.setOrder(outputs);
  const good: string[] = [];
  const failed: Array<[string, ValidationError[]]> = [];
  const nodeErrors = new Map<
    string,
    { errors: ValidationError[]; dependent_outputs: string[]; class_type: unknown }
  >();
  const validated: Validated = new Map();
  for (const o of outputSet) {
    let valid: boolean;
    let reasons: ValidationError[];
    try {
      [valid, reasons] = validateInputs(prompt, o, validated, ctx);
    } catch (err) {
      const ex = err instanceof PyException ? err : new PyException('Exception', String(err));
      valid = false;
      reasons = [
        {
          type: 'exception_during_validation',
          message: 'Exception when validating node',
          details: ex.message,
          extra_info: ordered([
            ['exception_type', ex.pyType],
            [
              'traceback',
              FAKE_TB([
                [
                  'execution.py',
                  1043,
                  'validate_prompt',
                  'm = await validate_inputs(prompt_id, prompt, o, validated)',
                ],
                ['execution.py', 818, 'validate_inputs', "o_class_type = prompt[o_id]['class_type']"],
              ]),
            ],
          ]),
        },
      ];
      validated.set(o, [false, reasons]);
    }
    if (valid) {
      good.push(o);
      continue;
    }
    failed.push([o, reasons]);
    for (const [nodeId, [ok, rs]] of validated) {
      if (ok || rs.length === 0) continue;
      let entry = nodeErrors.get(nodeId);
      if (!entry) {
        entry = { errors: rs, dependent_outputs: [], class_type: prompt[nodeId]!.class_type };
        nodeErrors.set(nodeId, entry);
      }
      entry.dependent_outputs.push(o);
    }
  }
  const nodeErrorsObj = ordered([...nodeErrors].map(([k, v]) => [k, ordered(Object.entries(v))]));
  if (good.length === 0) {
    const details = failed.flatMap(([, rs]) => rs.map((r) => `${r.message}: ${r.details}`)).join('\n');
    return {
      ok: false,
      error: {
        type: 'prompt_outputs_failed_validation',
        message: 'Prompt outputs failed validation',
        details,
        extra_info: {},
      },
      nodeErrors: nodeErrorsObj,
    };
  }
  return { ok: true, outputs: OUTPUT_ORDER.setOrder(good), nodeErrors: nodeErrorsObj };
}
