// Error classes of the workflow module: each carries a stable `code` and the structured issues.
// All are the caller's workflow at fault, so all answer 422 if one reaches HTTP.
import { GatewayError, type GatewayErrorOptions } from '../errors.ts';
import type { ConversionIssue, NodeDefs } from './types.ts';

/** Base class: every workflow error has a stable `code` and a list of issues naming nodes/inputs. */
export class WorkflowError extends GatewayError {
  readonly issues: ConversionIssue[];
  constructor(code: string, message: string, issues: ConversionIssue[] = [], options?: GatewayErrorOptions) {
    super(code, 422, message, options);
    this.issues = issues;
  }
}

/** The UI workflow cannot be turned into a correct API prompt. */
export class WorkflowConversionError extends WorkflowError {
  constructor(message: string, issues: ConversionIssue[]) {
    super('workflow_conversion_failed', message, issues);
  }
}

/** The input is neither a UI workflow nor an API prompt, or is structurally broken. */
export class WorkflowFormatError extends WorkflowError {
  constructor(message: string, issues: ConversionIssue[] = []) {
    super('workflow_format_invalid', message, issues);
  }
}

/** An API prompt fails structural validation (unknown classes, dangling links, no output node). */
export class PromptValidationError extends WorkflowError {
  constructor(message: string, issues: ConversionIssue[]) {
    super('prompt_invalid', message, issues);
  }
}

/** An override names a missing node/input or gives a value the node definition rejects. */
export class OverrideError extends WorkflowError {
  constructor(message: string, issues: ConversionIssue[]) {
    super('override_invalid', message, issues);
  }
}

/** A template declaration is malformed (bad YAML/JSON, unknown target, bad parameter spec). */
export class TemplateError extends WorkflowError {
  constructor(message: string, issues: ConversionIssue[] = []) {
    super('template_invalid', message, issues);
  }
}

/** Request parameters for a template fail validation (each issue names the parameter). */
export class TemplateParamsError extends WorkflowError {
  constructor(message: string, issues: ConversionIssue[]) {
    super('template_params_invalid', message, issues);
  }
}

/** The workflow expands to more nodes than allowed (nested subgraphs multiply). */
export class WorkflowTooLargeError extends WorkflowError {
  /** Nodes the workflow expands to (at least limit + 1 when expansion stopped early). */
  readonly nodes: number;
  readonly limit: number;
  constructor(nodes: number, limit: number) {
    const message = `the workflow expands to ${nodes} nodes, more than the limit of ${limit}`;
    super(
      'workflow_too_large',
      message,
      [{ severity: 'error', code: 'workflow_too_large', message, nodes, limit }],
      { details: { nodes, limit } },
    );
    this.nodes = nodes;
    this.limit = limit;
  }
}

/** A function that reads node definitions was called without them (or with something else). */
export class NodeDefsMissingError extends WorkflowError {
  constructor(fn: string, got: unknown) {
    const what = got === null ? 'null' : Array.isArray(got) ? 'an array' : typeof got;
    const message = `${fn} needs the node definitions (the body of ComfyUI's GET /object_info, an object of class name → definition), got ${what}`;
    super('node_defs_missing', message, [{ severity: 'error', code: 'node_defs_missing', message }]);
  }
}

/** Throws NodeDefsMissingError unless `defs` is an object map (the shape /object_info answers). */
export function requireNodeDefs(fn: string, defs: unknown): asserts defs is NodeDefs {
  if (defs === null || typeof defs !== 'object' || Array.isArray(defs))
    throw new NodeDefsMissingError(fn, defs);
}

/** Summarises issues into one readable line for `Error.message`. */
export function summariseIssues(issues: readonly ConversionIssue[], max = 5): string {
  const parts = issues.slice(0, max).map((i) => i.message);
  if (issues.length > max) parts.push(`…and ${issues.length - max} more`);
  return parts.join('; ');
}
