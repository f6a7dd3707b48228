// Preparing one iteration of a step: evaluating its parameters (values.ts), staging file outputs
// of earlier steps, and injecting the parameters into the step's workflow — a template's typed
// parameters, or `<node>.<input>` of an inline workflow — giving the API prompt and the job's
// `inputs` map (files the runner uploads to whichever instance runs the job).
import { type PrepareOptions, prepareWorkflow } from '../jobs/index.ts';
import {
  type ApiPrompt,
  applyTemplate,
  findNodes,
  TemplateError,
  TemplateParamsError,
  type WorkflowTemplate,
} from '../workflow/index.ts';
import type { StepDefinition } from './definition.ts';
import { IterationError } from './errors.ts';
import { type FileRef, isFileRef } from './outputs.ts';
import type { TemplateLookup } from './ports.ts';

/** A job ready to submit. */
export interface PreparedIteration {
  workflow: ApiPrompt;
  /** `"<node>.<input>"` → URL, data URI or `asset:<id>`, uploaded by the runner. */
  inputs: Record<string, string>;
}

/** What preparing needs. */
export interface PrepareContext {
  templates: TemplateLookup;
  prepare: PrepareOptions;
  /** Turns a file output of an earlier step into an input reference (streamed copy). */
  stage: (file: FileRef) => Promise<string>;
}

/** Values the runner's InputResolver fetches and uploads (as for /v1/workflows image parameters). */
const RESOLVABLE = /^(https?:\/\/|s3:\/\/|data:|asset:)/i;

/** Stages every file reference among the parameters (top-level values and list items). */
async function stageFiles(
  parameters: Record<string, unknown>,
  stage: (file: FileRef) => Promise<string>,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (isFileRef(value)) out[key] = await stage(value);
    else if (Array.isArray(value) && value.some(isFileRef))
      throw new IterationError(
        'invalid_parameters',
        `parameter "${key}" is a list of files; pass one file (e.g. files[0]) or fan out over them with for_each`,
        { parameter: key },
      );
    else out[key] = value;
  }
  return out;
}

/** Builds the job of one iteration from evaluated parameters; throws IterationError for bad ones. */
export async function prepareIteration(
  step: StepDefinition,
  evaluated: Record<string, unknown>,
  ctx: PrepareContext,
): Promise<PreparedIteration> {
  const parameters = await stageFiles(evaluated, ctx.stage);
  const inputs: Record<string, string> = {};
  let prompt: ApiPrompt;
  if (step.workflow.kind === 'template') {
    const name = step.workflow.name;
    let template: WorkflowTemplate;
    try {
      template = await ctx.templates.resolve(name);
    } catch (err) {
      throw new IterationError(
        'template_unavailable',
        `workflow template "${name}": ${(err as Error).message}`,
      );
    }
    try {
      prompt = applyTemplate(template, parameters);
    } catch (err) {
      if (err instanceof TemplateParamsError)
        throw new IterationError('invalid_parameters', `template "${name}": ${err.message}`, {
          issues: err.issues.map((i) => ({
            parameter: i.parameter ?? null,
            code: i.code,
            message: i.message,
          })),
        });
      if (err instanceof TemplateError)
        throw new IterationError('template_invalid', `template "${name}": ${err.message}`);
      throw err;
    }
    // File parameters go through the job's `inputs`; the stored prompt keeps the template's value.
    for (const [pname, p] of Object.entries(template.parameters)) {
      if (p.type !== 'image') continue;
      const value = parameters[pname] ?? p.default;
      if (typeof value !== 'string' || !RESOLVABLE.test(value)) continue;
      for (const t of p.targets) {
        inputs[`${t.node}.${t.input}`] = value;
        const original = template.prompt?.[t.node]?.inputs[t.input];
        const node = prompt[t.node];
        if (node && typeof original === 'string') node.inputs[t.input] = original;
      }
    }
  } else {
    const base = step.workflow.prompt;
    if (!base)
      throw new IterationError(
        'workflow_invalid',
        `step ${step.id}: the inline workflow could not be prepared`,
      );
    prompt = structuredClone(base);
    for (const [key, value] of Object.entries(parameters)) {
      const dot = key.indexOf('.');
      const [id] = findNodes(prompt, key.slice(0, dot));
      const input = key.slice(dot + 1);
      const node = id === undefined ? undefined : prompt[id];
      if (!node || id === undefined)
        throw new IterationError('invalid_parameters', `parameter "${key}": no such node`);
      if (typeof value === 'string' && RESOLVABLE.test(value)) inputs[`${id}.${input}`] = value;
      else node.inputs[input] = value as never;
    }
  }
  let workflow: ApiPrompt;
  try {
    workflow = (await prepareWorkflow(prompt, undefined, ctx.prepare)) as ApiPrompt;
  } catch (err) {
    const e = err as { code?: string; message?: string; details?: Record<string, unknown> | null };
    throw new IterationError(e.code ?? 'invalid_workflow', e.message ?? String(err), e.details ?? null);
  }
  return { workflow, inputs };
}
