// Named workflow templates: a JSON/YAML declaration of a workflow plus typed parameters that map
// onto node inputs; the request JSON Schema derived from it; and applying request parameters.
// Reading files is the caller's job: a relative `workflow` path goes through `readFile`.
import { parse as parseYaml } from 'yaml';
import { toApiPrompt } from './convert.ts';
import { isApiPrompt, isUiWorkflow } from './detect.ts';
import { requireNodeDefs, summariseIssues, TemplateError, TemplateParamsError } from './errors.ts';
import { nodeShape } from './node-shape.ts';
import { findNodes } from './overrides.ts';
import type { ApiPrompt, ConversionIssue, NodeDefs } from './types.ts';

/** Parameter types a template may declare. */
export type TemplateParamType = 'string' | 'integer' | 'number' | 'boolean' | 'image' | 'enum';

/** Where a parameter's value goes. */
export interface TemplateTarget {
  node: string;
  input: string;
}

/** One declared parameter (targets resolved to node ids). */
export interface TemplateParameter {
  type: TemplateParamType;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  required: boolean;
  targets: TemplateTarget[];
}

/** A parsed template. */
export interface WorkflowTemplate {
  name: string;
  description: string;
  /** The API prompt, when the workflow is in API format or could be converted. */
  prompt: ApiPrompt | undefined;
  /** The UI workflow, when the workflow is in UI format (converted at apply time if needed). */
  ui: unknown;
  parameters: Record<string, TemplateParameter>;
  warnings: ConversionIssue[];
}

/** Options of `parseTemplate`. */
export interface ParseTemplateOptions {
  /** Reads a workflow file named relative to the template file (the gateway's folder). */
  readFile?: (relativePath: string) => string;
}

const TYPES = new Set<TemplateParamType>(['string', 'integer', 'number', 'boolean', 'image', 'enum']);
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function fail(code: string, message: string, extra: Record<string, unknown> = {}): never {
  throw new TemplateError(message, [{ severity: 'error', code, message, ...extra }]);
}

/** Parses a template declaration (JSON or YAML by file extension/content). */
export function parseTemplate(
  fileContents: string,
  fileName: string,
  nodeDefs?: NodeDefs,
  options: ParseTemplateOptions = {},
): WorkflowTemplate {
  let doc: unknown;
  try {
    doc = /\.json$/i.test(fileName) ? JSON.parse(fileContents) : parseYaml(fileContents);
  } catch (e) {
    fail('template_syntax', `${fileName}: cannot parse: ${(e as Error).message}`);
  }
  if (!isObject(doc))
    fail('template_not_object', `${fileName}: a template must be an object with "workflow" and "parameters"`);
  const base = fileName.replace(/^.*[\\/]/, '').replace(/\.(ya?ml|json)$/i, '');
  const name = typeof doc.name === 'string' ? doc.name : base;
  if (!NAME.test(name))
    fail('template_name_invalid', `${fileName}: template name "${name}" must match ${NAME.source}`);
  let workflow = doc.workflow;
  if (typeof workflow === 'string') {
    if (/^([a-z]+:|\/|\\)/i.test(workflow) || workflow.split(/[\\/]/).includes('..')) {
      fail(
        'template_workflow_path',
        `${fileName}: workflow path "${workflow}" must be relative and stay inside the templates folder`,
      );
    }
    if (!options.readFile)
      fail(
        'template_workflow_unreadable',
        `${fileName}: workflow "${workflow}" is a file, but no file reader was given`,
      );
    try {
      workflow = JSON.parse(options.readFile(workflow));
    } catch (e) {
      fail(
        'template_workflow_unreadable',
        `${fileName}: cannot read workflow "${String(doc.workflow)}": ${(e as Error).message}`,
      );
    }
  }
  const warnings: ConversionIssue[] = [];
  let prompt: ApiPrompt | undefined;
  let ui: unknown;
  if (isUiWorkflow(workflow)) {
    ui = workflow;
    if (nodeDefs) {
      const r = toApiPrompt(workflow, nodeDefs);
      prompt = r.prompt;
      warnings.push(...r.warnings);
    }
  } else if (isApiPrompt(workflow)) prompt = workflow as ApiPrompt;
  else
    fail('template_workflow_invalid', `${fileName}: "workflow" is neither a UI workflow nor an API prompt`);

  const rawParams = doc.parameters ?? {};
  if (!isObject(rawParams))
    fail('template_parameters_invalid', `${fileName}: "parameters" must be an object`);
  const parameters: Record<string, TemplateParameter> = {};
  const issues: ConversionIssue[] = [];
  for (const [pname, raw] of Object.entries(rawParams)) {
    const p = parseParameter(pname, raw, prompt, nodeDefs, issues);
    if (p) parameters[pname] = p;
  }
  if (issues.length > 0) throw new TemplateError(`${fileName}: ${summariseIssues(issues)}`, issues);
  return {
    name,
    description: typeof doc.description === 'string' ? doc.description : '',
    prompt,
    ui,
    parameters,
    warnings,
  };
}

function parseParameter(
  name: string,
  raw: unknown,
  prompt: ApiPrompt | undefined,
  defs: NodeDefs | undefined,
  issues: ConversionIssue[],
): TemplateParameter | undefined {
  const err = (code: string, message: string) => {
    issues.push({ severity: 'error', code, message: `parameter "${name}": ${message}`, parameter: name });
    return undefined;
  };
  if (!NAME.test(name)) return err('parameter_name_invalid', `name must match ${NAME.source}`);
  if (!isObject(raw)) return err('parameter_invalid', 'must be an object with "type" and "target"');
  const type = raw.type as TemplateParamType;
  if (!TYPES.has(type)) return err('parameter_type_invalid', `type must be one of ${[...TYPES].join(', ')}`);
  const targetsRaw = Array.isArray(raw.target) ? raw.target : [raw.target];
  const targets: TemplateTarget[] = [];
  for (const t of targetsRaw) {
    if (
      !isObject(t) ||
      (typeof t.node !== 'string' && typeof t.node !== 'number') ||
      typeof t.input !== 'string'
    ) {
      return err(
        'parameter_target_invalid',
        'target must be {node: "<id or title>", input: "<input name>"} or a list of them',
      );
    }
    let node = String(t.node);
    if (prompt) {
      const ids = findNodes(prompt, node);
      if (ids.length !== 1) {
        return err(
          'parameter_target_node',
          ids.length === 0
            ? `no node has id or title "${node}"`
            : `title "${node}" matches nodes ${ids.join(', ')}`,
        );
      }
      node = ids[0] as string;
      const pn = prompt[node] as ApiPrompt[string];
      const def = defs?.[pn.class_type];
      const input = def ? nodeShape(def).byName.get(t.input) : undefined;
      if (def && !input)
        return err('parameter_target_input', `node ${node} (${pn.class_type}) has no input "${t.input}"`);
      if (!def && !(t.input in pn.inputs))
        return err('parameter_target_input', `node ${node} (${pn.class_type}) has no input "${t.input}"`);
    }
    targets.push({ node, input: t.input });
  }
  if (targets.length === 0) return err('parameter_target_invalid', 'needs at least one target');
  const p: TemplateParameter = { type, required: raw.required === true, targets };
  if (typeof raw.description === 'string') p.description = raw.description;
  if (typeof raw.minimum === 'number') p.minimum = raw.minimum;
  if (typeof raw.maximum === 'number') p.maximum = raw.maximum;
  if (Array.isArray(raw.enum)) p.enum = raw.enum;
  if (type === 'enum' && (!p.enum || p.enum.length === 0))
    return err('parameter_enum_missing', 'type enum needs a non-empty "enum" list');
  let def = raw.default;
  const first = targets[0] as TemplateTarget;
  if (def === undefined && prompt) {
    const current = prompt[first.node]?.inputs[first.input];
    if (current !== undefined && !Array.isArray(current)) def = current;
  }
  if (def !== undefined) {
    const bad = checkParam(p, def);
    if (bad) return err('parameter_default_invalid', `default ${JSON.stringify(def)}: ${bad}`);
    p.default = def;
  }
  return p;
}

function checkParam(p: TemplateParameter, v: unknown): string | undefined {
  switch (p.type) {
    case 'string':
    case 'image':
      if (typeof v !== 'string') return 'expected a string';
      break;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) return 'expected an integer';
      break;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return 'expected a number';
      break;
    case 'boolean':
      if (typeof v !== 'boolean') return 'expected true or false';
      break;
    case 'enum':
      break;
  }
  if (typeof v === 'number') {
    if (p.minimum !== undefined && v < p.minimum) return `must be ≥ ${p.minimum}`;
    if (p.maximum !== undefined && v > p.maximum) return `must be ≤ ${p.maximum}`;
  }
  if (p.enum && !p.enum.includes(v))
    return `must be one of ${p.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  return undefined;
}

/** JSON Schema (draft 2020-12 compatible) of the request body a template accepts. */
export function templateRequestSchema(template: WorkflowTemplate): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const [name, p] of Object.entries(template.parameters)) {
    const s: Record<string, unknown> = {};
    if (p.type === 'enum') {
      const kinds = new Set((p.enum ?? []).map((e) => typeof e));
      if (kinds.size === 1)
        s.type = kinds.has('number') ? 'number' : kinds.has('boolean') ? 'boolean' : 'string';
    } else if (p.type === 'image') {
      s.type = 'string';
      // Standard JSON Schema: forms (the dashboard's playground) offer a file drop for it.
      s.contentMediaType = 'image/*';
      s.description =
        p.description ?? 'Image: a URL, a data URI, an asset reference or a file name on the instance';
    } else s.type = p.type;
    if (p.description !== undefined) s.description = p.description;
    if (p.default !== undefined) s.default = p.default;
    if (p.minimum !== undefined) s.minimum = p.minimum;
    if (p.maximum !== undefined) s.maximum = p.maximum;
    if (p.enum) s.enum = p.enum;
    properties[name] = s;
    if (p.required) required.push(name);
  }
  const schema: Record<string, unknown> = { type: 'object', properties, additionalProperties: false };
  if (template.description) schema.description = template.description;
  if (required.length > 0) schema.required = required;
  return schema;
}

/** Builds the API prompt for a request: validates `params` and writes them into their targets. */
export function applyTemplate(template: WorkflowTemplate, params: unknown, nodeDefs?: NodeDefs): ApiPrompt {
  if (nodeDefs !== undefined) requireNodeDefs('applyTemplate', nodeDefs);
  const issues: ConversionIssue[] = [];
  const given = params ?? {};
  if (!isObject(given)) {
    throw new TemplateParamsError('parameters must be an object', [
      {
        severity: 'error',
        code: 'params_not_object',
        message: 'parameters must be an object of name → value',
      },
    ]);
  }
  for (const name of Object.keys(given)) {
    if (!template.parameters[name]) {
      const known = Object.keys(template.parameters).join(', ') || 'none';
      issues.push({
        severity: 'error',
        code: 'param_unknown',
        message: `unknown parameter "${name}" (parameters: ${known})`,
        parameter: name,
      });
    }
  }
  for (const [name, p] of Object.entries(template.parameters)) {
    const v = given[name];
    if (v === undefined) {
      if (p.required)
        issues.push({
          severity: 'error',
          code: 'param_required',
          message: `parameter "${name}" is required`,
          parameter: name,
        });
      continue;
    }
    const bad = checkParam(p, v);
    if (bad)
      issues.push({
        severity: 'error',
        code: 'param_invalid',
        message: `parameter "${name}": ${bad}`,
        parameter: name,
        value: v,
      });
  }
  if (issues.length > 0)
    throw new TemplateParamsError(`invalid parameters: ${summariseIssues(issues)}`, issues);
  let prompt = template.prompt;
  if (!prompt) {
    if (!nodeDefs) {
      throw new TemplateError(
        `template "${template.name}" is a UI workflow; node definitions are needed to convert it`,
        [
          {
            severity: 'error',
            code: 'template_needs_node_defs',
            message: 'UI-format template needs node definitions',
          },
        ],
      );
    }
    prompt = toApiPrompt(template.ui, nodeDefs).prompt;
  }
  const out = structuredClone(prompt);
  for (const [name, p] of Object.entries(template.parameters)) {
    const v = given[name] ?? p.default;
    if (v === undefined) continue;
    for (const t of p.targets) {
      const node = out[t.node];
      if (node) node.inputs[t.input] = v;
    }
  }
  return out;
}
