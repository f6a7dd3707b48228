// Pipeline definitions: the parsed, validated form of a `*.pipeline.yaml` (or an inline JSON body).
// Validation happens here, once, before anything runs: unknown step or template, references to a
// later step, bad expressions, loops without `max`, limits exceeded — every problem is collected
// with the path where it is (`steps[1].repeat.while`), never thrown one at a time.
import { parse as parseYaml } from 'yaml';
import { GatewayError } from '../errors.ts';
import {
  type ApiPrompt,
  applyTemplate,
  findNodes,
  isApiPrompt,
  isUiWorkflow,
  parseTemplate,
  TemplateError,
  TemplateParamsError,
  type TemplateParameter,
  templateRequestSchema,
  type WorkflowTemplate,
} from '../workflow/index.ts';
import {
  type CompiledExpression,
  type ExpressionCompiler,
  ExpressionError,
  embedsExpression,
  isExpression,
} from './expressions.ts';
import { type OutputSpec, parseOutputSpecs } from './outputs.ts';
import type { TemplateLookup } from './ports.ts';

/** Bounds on a definition (PIPELINE_* settings). */
export interface PipelineLimits {
  maxSteps: number;
  /** Upper bound of any loop's `max`. */
  maxIterations: number;
  /** Most items of one `for_each`. */
  maxFanOut: number;
  /** Upper bound of `parallel`. */
  maxParallel: number;
}

/** Defaults of the limits. */
export const DEFAULT_PIPELINE_LIMITS: PipelineLimits = {
  maxSteps: 100,
  maxIterations: 100,
  maxFanOut: 100,
  maxParallel: 16,
};

/** One problem of a definition, with where it is. */
export interface DefinitionIssue {
  /** Where: `steps[1].repeat.while`, `inputs.min_width`, `outputs.image`… */
  path: string;
  code: string;
  message: string;
}

/** A definition that cannot be run; `issues` lists every problem found. */
export class PipelineDefinitionError extends GatewayError {
  readonly issues: DefinitionIssue[];
  constructor(issues: DefinitionIssue[]) {
    super(
      'invalid_pipeline',
      422,
      issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ') + (issues.length > 5 ? ` (and ${issues.length - 5} more)` : ''),
    );
    this.issues = issues;
  }
}

/** A value of a definition: a literal, an expression, or a list/object holding expressions. */
export type ValueTemplate =
  | { kind: 'literal'; value: unknown }
  | { kind: 'expr'; expr: CompiledExpression }
  | { kind: 'list'; items: ValueTemplate[] }
  | { kind: 'object'; entries: Array<[string, ValueTemplate]> };

/** Where a step's workflow comes from. */
export type StepWorkflow =
  | { kind: 'template'; name: string }
  | { kind: 'inline'; prompt: ApiPrompt | undefined; ui: unknown };

/** A loop: run, then `while` is evaluated on the outputs; `next` gives the next parameters. */
export interface StepRepeat {
  while: CompiledExpression;
  max: number;
  next: Record<string, ValueTemplate>;
}

/** One validated step. */
export interface StepDefinition {
  id: string;
  index: number;
  workflow: StepWorkflow;
  parameters: Record<string, ValueTemplate>;
  when: CompiledExpression | null;
  forEach: ValueTemplate | null;
  parallel: number;
  repeat: StepRepeat | null;
  /** Declared outputs (the step's own, over the template's). */
  outputs: Record<string, OutputSpec>;
  timeoutMs: number | null;
}

/** A validated pipeline. */
export interface PipelineDefinition {
  name: string | null;
  description: string;
  /** Input declarations, typed like template parameters. */
  inputs: Record<string, TemplateParameter>;
  /** JSON Schema of the `inputs` object. */
  inputSchema: Record<string, unknown>;
  steps: StepDefinition[];
  outputs: Record<string, ValueTemplate>;
  /** The document as given (stored with a run so it can resume without the file). */
  source: Record<string, unknown>;
  /** Applies defaults and checks given inputs; throws PipelineInputsError. */
  resolveInputs(given: unknown): Record<string, unknown>;
}

/** Inputs that fail the declaration; `issues` name each input. */
export class PipelineInputsError extends GatewayError {
  readonly issues: Array<{ input: string | null; code: string; message: string }>;
  constructor(issues: Array<{ input: string | null; code: string; message: string }>) {
    super('invalid_inputs', 422, issues.map((i) => i.message).join('; '));
    this.issues = issues;
  }
}

/** What parsing needs besides the document. */
export interface ParseContext {
  templates: TemplateLookup;
  compiler: ExpressionCompiler;
  limits: PipelineLimits;
  /** Converts an inline UI workflow (node definitions loaded by the caller); absent = UI refused. */
  convertUi?: (ui: unknown) => ApiPrompt;
}

const STEP_ID = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const PIPELINE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const TOP_KEYS = new Set(['name', 'description', 'inputs', 'steps', 'outputs']);
const STEP_KEYS = new Set([
  'id',
  'workflow',
  'parameters',
  'when',
  'for_each',
  'parallel',
  'repeat',
  'outputs',
  'timeout_ms',
  'description',
]);
const REPEAT_KEYS = new Set(['while', 'max', 'next']);

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Parses YAML or JSON text (by file name) into a document; throws PipelineDefinitionError. */
export function readPipelineText(text: string, fileName: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = /\.json$/i.test(fileName) ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new PipelineDefinitionError([
      {
        path: fileName,
        code: 'pipeline_syntax',
        message: `cannot parse: ${(err as Error).message.split('\n')[0]}`,
      },
    ]);
  }
  if (!isObject(doc))
    throw new PipelineDefinitionError([
      { path: fileName, code: 'pipeline_not_object', message: 'a pipeline is an object with `steps`' },
    ]);
  return doc;
}

/** Validates a pipeline document; throws PipelineDefinitionError listing every problem. */
export function parsePipeline(
  doc: unknown,
  ctx: ParseContext,
  defaultName: string | null = null,
): PipelineDefinition {
  const issues: DefinitionIssue[] = [];
  const add = (path: string, code: string, message: string) => issues.push({ path, code, message });
  if (!isObject(doc))
    throw new PipelineDefinitionError([
      { path: '', code: 'pipeline_not_object', message: 'a pipeline is an object with `steps`' },
    ]);
  for (const key of Object.keys(doc))
    if (!TOP_KEYS.has(key))
      add(key, 'unknown_field', `unknown field "${key}" (fields: ${[...TOP_KEYS].join(', ')})`);
  const name = typeof doc.name === 'string' ? doc.name : defaultName;
  if (name !== null && !PIPELINE_NAME.test(name))
    add('name', 'pipeline_name_invalid', `"${name}" must match ${PIPELINE_NAME.source}`);
  if (doc.description !== undefined && typeof doc.description !== 'string')
    add('description', 'invalid_field', 'description must be a string');

  const inputs = parseInputs(doc.inputs, add);
  const rawSteps = doc.steps;
  const steps: StepDefinition[] = [];
  if (!Array.isArray(rawSteps) || rawSteps.length === 0) {
    add('steps', 'steps_missing', 'a pipeline needs a non-empty list of steps');
  } else {
    if (rawSteps.length > ctx.limits.maxSteps)
      add(
        'steps',
        'limit_steps',
        `${rawSteps.length} steps (at most ${ctx.limits.maxSteps}, PIPELINE_MAX_STEPS)`,
      );
    const ids = rawSteps.map((s) => (isObject(s) && typeof s.id === 'string' ? s.id : null));
    rawSteps.slice(0, ctx.limits.maxSteps).forEach((raw, index) => {
      const step = parseStep(raw, index, ids, new Set(Object.keys(inputs.parameters)), ctx, add);
      if (step) steps.push(step);
    });
  }
  const outputs: Record<string, ValueTemplate> = {};
  if (doc.outputs !== undefined) {
    if (!isObject(doc.outputs)) add('outputs', 'invalid_field', 'outputs must be an object of name → value');
    else {
      const all = new Set(steps.map((s) => s.id));
      for (const [key, value] of Object.entries(doc.outputs)) {
        const path = `outputs.${key}`;
        outputs[key] = compileValue(value, path, ctx, add, (expr, where) =>
          checkReferences(
            expr,
            where,
            { allowed: all, known: all, inputs: new Set(Object.keys(inputs.parameters)), loopVars: false },
            add,
          ),
        );
      }
    }
  }
  if (issues.length > 0) throw new PipelineDefinitionError(issues);
  const inputTemplate = inputs.template;
  return {
    name,
    description: typeof doc.description === 'string' ? doc.description : '',
    inputs: inputs.parameters,
    inputSchema: inputs.schema,
    steps,
    outputs,
    source: doc,
    resolveInputs: (given) => resolveInputs(inputTemplate, given),
  };
}

interface ParsedInputs {
  parameters: Record<string, TemplateParameter>;
  schema: Record<string, unknown>;
  template: WorkflowTemplate;
}

/**
 * Input declarations are template parameters without targets: they are checked by the workflow
 * module's own template parser (types, bounds, enums, defaults), pointed at a stand-in node, so
 * pipeline inputs and template parameters have one typing and one JSON Schema.
 */
function parseInputs(raw: unknown, add: (path: string, code: string, message: string) => void): ParsedInputs {
  const empty = (): ParsedInputs => {
    const template: WorkflowTemplate = {
      name: 'inputs',
      description: '',
      prompt: STAND_IN_EMPTY,
      ui: undefined,
      parameters: {},
      warnings: [],
    };
    return { parameters: {}, schema: templateRequestSchema(template), template };
  };
  if (raw === undefined || raw === null) return empty();
  if (!isObject(raw)) {
    add('inputs', 'invalid_field', 'inputs must be an object of name → declaration');
    return empty();
  }
  const parameters: Record<string, unknown> = {};
  const standIn: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(raw)) {
    if (!isObject(spec)) {
      add(
        `inputs.${name}`,
        'input_invalid',
        'an input is declared as { type, default?, required?, minimum?, maximum?, enum? }',
      );
      continue;
    }
    if ('target' in spec)
      add(
        `inputs.${name}.target`,
        'unknown_field',
        `pipeline inputs have no target; steps use them as \${{ inputs.${name} }}`,
      );
    parameters[name] = { ...spec, target: { node: 'in', input: name } };
    // A link, so the stand-in never supplies a default of its own.
    standIn[name] = ['in', 0];
  }
  const declaration = { workflow: { in: { class_type: 'PipelineInputs', inputs: standIn } }, parameters };
  try {
    const template = parseTemplate(JSON.stringify(declaration), 'inputs.json');
    return { parameters: template.parameters, schema: templateRequestSchema(template), template };
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    for (const issue of err.issues) {
      const input = typeof issue.parameter === 'string' ? issue.parameter : '';
      add(
        input ? `inputs.${input}` : 'inputs',
        issue.code,
        issue.message.replace(/^parameter "[^"]*": /, ''),
      );
    }
    return empty();
  }
}

const STAND_IN_EMPTY: ApiPrompt = { in: { class_type: 'PipelineInputs', inputs: {} } };

function resolveInputs(template: WorkflowTemplate, given: unknown): Record<string, unknown> {
  let filled: ApiPrompt;
  try {
    filled = applyTemplate(template, given ?? {});
  } catch (err) {
    if (err instanceof TemplateParamsError)
      throw new PipelineInputsError(
        err.issues.map((i) => ({
          input: typeof i.parameter === 'string' ? i.parameter : null,
          code:
            i.code === 'param_unknown'
              ? 'input_unknown'
              : i.code === 'param_required'
                ? 'input_required'
                : 'input_invalid',
          message: i.message.replaceAll('parameter', 'input'),
        })),
      );
    throw err;
  }
  const values = filled.in?.inputs ?? {};
  const out: Record<string, unknown> = {};
  // Declared but absent (optional, no default) inputs are null, so `inputs.x` always resolves.
  for (const name of Object.keys(template.parameters)) {
    const v = values[name];
    out[name] = Array.isArray(v) ? null : (v ?? null);
  }
  return out;
}

interface RefScope {
  /** Steps this expression may read. */
  allowed: ReadonlySet<string>;
  /** Every step of the pipeline (to tell "later" from "unknown"). */
  known: ReadonlySet<string>;
  /** Declared inputs. */
  inputs: ReadonlySet<string>;
  /** `item`/`index` are bound (a for_each step's parameters). */
  loopVars: boolean;
}

function checkReferences(
  expr: CompiledExpression,
  path: string,
  scope: RefScope,
  add: (path: string, code: string, message: string) => void,
): void {
  for (const step of expr.steps) {
    if (scope.allowed.has(step)) continue;
    if (scope.known.has(step))
      add(
        path,
        'forward_reference',
        `steps.${step} is not run yet here (a step may read only the steps before it)`,
      );
    else add(path, 'unknown_step', `no step has id "${step}"`);
  }
  if (!scope.loopVars)
    for (const v of ['item', 'index'])
      if (expr.variables.has(v))
        add(path, 'unbound_variable', `${v} is bound only in the parameters of a for_each step`);
}

function compileExpr(
  value: unknown,
  path: string,
  ctx: ParseContext,
  add: (path: string, code: string, message: string) => void,
): CompiledExpression | null {
  if (typeof value !== 'string' || !isExpression(value)) {
    add(path, 'expression_required', `expected an expression \${{ … }}`);
    return null;
  }
  try {
    return ctx.compiler.compile(value);
  } catch (err) {
    if (err instanceof ExpressionError) {
      add(path, err.code, err.message);
      return null;
    }
    throw err;
  }
}

/** Compiles a value: expressions anywhere inside lists and objects; literals kept as they are. */
function compileValue(
  value: unknown,
  path: string,
  ctx: ParseContext,
  add: (path: string, code: string, message: string) => void,
  check: (expr: CompiledExpression, path: string) => void,
  depth = 0,
): ValueTemplate {
  if (depth > 16) {
    add(path, 'value_too_deep', 'values nest at most 16 levels');
    return { kind: 'literal', value: null };
  }
  if (typeof value === 'string') {
    if (isExpression(value)) {
      const expr = compileExpr(value, path, ctx, add);
      if (!expr) return { kind: 'literal', value: null };
      check(expr, path);
      return { kind: 'expr', expr };
    }
    if (embedsExpression(value))
      add(
        path,
        'expression_embedded',
        `a value is either exactly \${{ … }} or a literal; build strings inside the expression ("a" + x)`,
      );
    return { kind: 'literal', value };
  }
  if (Array.isArray(value)) {
    const items = value.map((v, i) => compileValue(v, `${path}[${i}]`, ctx, add, check, depth + 1));
    return items.every((i) => i.kind === 'literal') ? { kind: 'literal', value } : { kind: 'list', items };
  }
  if (isObject(value)) {
    const entries = Object.entries(value).map(
      ([k, v]) => [k, compileValue(v, `${path}.${k}`, ctx, add, check, depth + 1)] as [string, ValueTemplate],
    );
    return entries.every(([, v]) => v.kind === 'literal')
      ? { kind: 'literal', value }
      : { kind: 'object', entries };
  }
  return { kind: 'literal', value };
}

function parseStep(
  raw: unknown,
  index: number,
  ids: Array<string | null>,
  inputNames: ReadonlySet<string>,
  ctx: ParseContext,
  add: (path: string, code: string, message: string) => void,
): StepDefinition | null {
  const at = `steps[${index}]`;
  if (!isObject(raw)) {
    add(at, 'step_invalid', 'a step is an object with id and workflow');
    return null;
  }
  const id = typeof raw.id === 'string' ? raw.id : '';
  const where = id ? `${at} (${id})` : at;
  if (!STEP_ID.test(id))
    add(`${where}.id`, 'step_id_invalid', `a step needs an id matching ${STEP_ID.source}`);
  else if (ids.indexOf(id) !== index)
    add(`${where}.id`, 'step_id_duplicate', `step id "${id}" is used twice`);
  for (const key of Object.keys(raw))
    if (!STEP_KEYS.has(key))
      add(
        `${where}.${key}`,
        'unknown_field',
        `unknown field "${key}" (fields: ${[...STEP_KEYS].join(', ')})`,
      );

  const known = new Set(ids.filter((x): x is string => x !== null));
  const before = new Set(ids.slice(0, index).filter((x): x is string => x !== null));
  const withSelf = new Set([...before, id]);
  const scope = (allowed: ReadonlySet<string>, loopVars: boolean): RefScope => ({
    allowed,
    known,
    inputs: inputNames,
    loopVars,
  });

  // The workflow: a template by name, or inline (API format, or UI converted with node definitions).
  let workflow: StepWorkflow | null = null;
  let prompt: ApiPrompt | undefined;
  let templateParams: Record<string, TemplateParameter> | null = null;
  let templateOutputs: Record<string, OutputSpec> = {};
  if (typeof raw.workflow === 'string') {
    const found = ctx.templates.get(raw.workflow);
    if (!found) add(`${where}.workflow`, 'unknown_template', `no workflow template named "${raw.workflow}"`);
    else {
      workflow = { kind: 'template', name: raw.workflow };
      prompt = found.template.prompt;
      templateParams = found.template.parameters;
      templateOutputs = found.outputs;
    }
  } else if (isObject(raw.workflow)) {
    if (isUiWorkflow(raw.workflow)) {
      if (!ctx.convertUi)
        add(
          `${where}.workflow`,
          'workflow_format_ui',
          'an inline UI workflow needs node definitions; send the API format',
        );
      else {
        try {
          prompt = ctx.convertUi(raw.workflow);
          workflow = { kind: 'inline', prompt, ui: raw.workflow };
        } catch (err) {
          add(
            `${where}.workflow`,
            'workflow_invalid',
            `the UI workflow cannot be converted: ${(err as Error).message}`,
          );
        }
      }
    } else if (isApiPrompt(raw.workflow)) {
      prompt = raw.workflow as ApiPrompt;
      workflow = { kind: 'inline', prompt, ui: undefined };
    } else
      add(
        `${where}.workflow`,
        'workflow_invalid',
        'workflow is neither a template name, an API prompt nor a UI workflow',
      );
  } else
    add(
      `${where}.workflow`,
      'workflow_missing',
      'a step needs `workflow`: a template name or an inline workflow',
    );

  // Expressions that decide whether and how often the step runs read only earlier steps.
  let when: CompiledExpression | null = null;
  if (raw.when !== undefined) {
    when = compileExpr(raw.when, `${where}.when`, ctx, add);
    if (when) checkReferences(when, `${where}.when`, scope(before, false), add);
  }
  let forEach: ValueTemplate | null = null;
  if (raw.for_each !== undefined) {
    if (Array.isArray(raw.for_each) && raw.for_each.length > ctx.limits.maxFanOut)
      add(
        `${where}.for_each`,
        'limit_fan_out',
        `${raw.for_each.length} items (at most ${ctx.limits.maxFanOut}, PIPELINE_MAX_FAN_OUT)`,
      );
    if (!Array.isArray(raw.for_each) && !isExpression(raw.for_each))
      add(`${where}.for_each`, 'for_each_invalid', 'for_each is a list or an expression giving one');
    else
      forEach = compileValue(raw.for_each, `${where}.for_each`, ctx, add, (e, p) =>
        checkReferences(e, p, scope(before, false), add),
      );
  }
  let parallel = 1;
  if (raw.parallel !== undefined) {
    if (forEach === null)
      add(`${where}.parallel`, 'parallel_without_for_each', 'parallel applies to for_each steps');
    if (typeof raw.parallel !== 'number' || !Number.isInteger(raw.parallel) || raw.parallel < 1)
      add(`${where}.parallel`, 'parallel_invalid', 'parallel is an integer ≥ 1');
    else if (raw.parallel > ctx.limits.maxParallel)
      add(
        `${where}.parallel`,
        'limit_parallel',
        `parallel ${raw.parallel} (at most ${ctx.limits.maxParallel}, PIPELINE_MAX_PARALLEL)`,
      );
    else parallel = raw.parallel;
  }

  const paramCheck = (key: string, path: string) => {
    if (templateParams) {
      if (!(key in templateParams))
        add(
          path,
          'unknown_parameter',
          `template "${(workflow as { name: string }).name}" has no parameter "${key}" (parameters: ${Object.keys(templateParams).join(', ') || 'none'})`,
        );
    } else if (prompt) {
      const dot = key.indexOf('.');
      const node = dot > 0 ? key.slice(0, dot) : '';
      const input = dot > 0 ? key.slice(dot + 1) : '';
      if (!node || !input)
        add(path, 'parameter_name_invalid', 'inline workflow parameters are named "<node>.<input>"');
      else {
        const found = findNodes(prompt, node);
        if (found.length !== 1)
          add(
            path,
            'unknown_node',
            found.length === 0
              ? `no node has id or title "${node}"`
              : `title "${node}" matches nodes ${found.join(', ')}`,
          );
      }
    }
  };
  const parameters: Record<string, ValueTemplate> = {};
  const loopVars = forEach !== null;
  if (raw.parameters !== undefined) {
    if (!isObject(raw.parameters))
      add(`${where}.parameters`, 'invalid_field', 'parameters must be an object');
    else
      for (const [key, value] of Object.entries(raw.parameters)) {
        const path = `${where}.parameters.${key}`;
        paramCheck(key, path);
        parameters[key] = compileValue(value, path, ctx, add, (e, p) =>
          checkReferences(e, p, scope(before, loopVars), add),
        );
      }
  }

  let repeat: StepRepeat | null = null;
  if (raw.repeat !== undefined) {
    const r = raw.repeat;
    if (forEach !== null)
      add(
        `${where}.repeat`,
        'repeat_with_for_each',
        'a step either loops (repeat) or fans out (for_each), not both',
      );
    if (!isObject(r)) add(`${where}.repeat`, 'repeat_invalid', 'repeat is { while, max, next? }');
    else {
      for (const key of Object.keys(r))
        if (!REPEAT_KEYS.has(key))
          add(`${where}.repeat.${key}`, 'unknown_field', `unknown field "${key}" (fields: while, max, next)`);
      const whileExpr =
        r.while === undefined ? null : compileExpr(r.while, `${where}.repeat.while`, ctx, add);
      if (r.while === undefined)
        add(`${where}.repeat.while`, 'repeat_without_while', 'a loop needs a `while` condition');
      if (whileExpr) checkReferences(whileExpr, `${where}.repeat.while`, scope(withSelf, false), add);
      let max = 0;
      if (r.max === undefined)
        add(`${where}.repeat.max`, 'repeat_without_max', 'a loop needs `max`, its upper bound of iterations');
      else if (typeof r.max !== 'number' || !Number.isInteger(r.max) || r.max < 1)
        add(`${where}.repeat.max`, 'repeat_max_invalid', 'max is an integer ≥ 1');
      else if (r.max > ctx.limits.maxIterations)
        add(
          `${where}.repeat.max`,
          'limit_iterations',
          `max ${r.max} (at most ${ctx.limits.maxIterations}, PIPELINE_MAX_ITERATIONS)`,
        );
      else max = r.max;
      const next: Record<string, ValueTemplate> = {};
      if (r.next !== undefined) {
        if (!isObject(r.next))
          add(`${where}.repeat.next`, 'invalid_field', 'next must be an object of parameters');
        else
          for (const [key, value] of Object.entries(r.next)) {
            const path = `${where}.repeat.next.${key}`;
            paramCheck(key, path);
            next[key] = compileValue(value, path, ctx, add, (e, p) =>
              checkReferences(e, p, scope(withSelf, false), add),
            );
          }
      }
      if (whileExpr && max > 0) repeat = { while: whileExpr, max, next };
    }
  }

  let outputs: Record<string, OutputSpec> = templateOutputs;
  if (raw.outputs !== undefined) {
    const parsed = parseOutputSpecs(raw.outputs, prompt);
    for (const issue of parsed.issues)
      add(`${where}.outputs${issue.output ? `.${issue.output}` : ''}`, issue.code, issue.message);
    outputs = { ...templateOutputs, ...parsed.outputs };
  }
  let timeoutMs: number | null = null;
  if (raw.timeout_ms !== undefined) {
    if (typeof raw.timeout_ms !== 'number' || !Number.isInteger(raw.timeout_ms) || raw.timeout_ms < 100)
      add(`${where}.timeout_ms`, 'invalid_field', 'timeout_ms is an integer ≥ 100');
    else timeoutMs = raw.timeout_ms;
  }
  if (!workflow || !STEP_ID.test(id)) return null;
  return { id, index, workflow, parameters, when, forEach, parallel, repeat, outputs, timeoutMs };
}
