// Evaluating a definition's values against a run's context ("evaluate conditions"): literals as
// they are, expressions with CEL, lists and objects recursively. The context holds the run's
// inputs and each finished step's status, outputs and iteration count, already in CEL form so
// an evaluation converts nothing.
import type { ValueTemplate } from './definition.ts';
import { type CompiledExpression, ExpressionError, toCel } from './expressions.ts';

/** What a step looks like to expressions. */
export interface StepView {
  status: string;
  /** One iteration's outputs; a list of them for a for_each step. */
  outputs: unknown;
  iterations: number;
}

/** The evaluation context of a run, updated as steps finish. */
export class RunContext {
  readonly #inputs: unknown;
  readonly #run: unknown;
  readonly #steps: Record<string, unknown> = {};

  constructor(runId: string, inputs: Record<string, unknown>) {
    this.#inputs = toCel(inputs);
    this.#run = { id: runId };
  }

  /** Records (or replaces) what a step shows to later expressions. */
  setStep(id: string, view: StepView): void {
    this.#steps[id] = {
      status: view.status,
      outputs: toCel(view.outputs),
      iterations: BigInt(view.iterations),
    };
  }

  /** The CEL variables, with loop variables bound where given. */
  variables(bound: { iteration?: number; item?: unknown; index?: number } = {}): Record<string, unknown> {
    return {
      inputs: this.#inputs,
      steps: this.#steps,
      run: this.#run,
      iteration: BigInt(bound.iteration ?? 0),
      item: bound.item === undefined ? null : toCel(bound.item),
      index: BigInt(bound.index ?? 0),
    };
  }
}

/** Evaluates a value of the definition. Throws ExpressionError. */
export function evaluateValue(value: ValueTemplate, variables: Record<string, unknown>): unknown {
  switch (value.kind) {
    case 'literal':
      return value.value;
    case 'expr':
      return value.expr.evaluate(variables);
    case 'list':
      return value.items.map((v) => evaluateValue(v, variables));
    case 'object':
      return Object.fromEntries(value.entries.map(([k, v]) => [k, evaluateValue(v, variables)]));
  }
}

/** Evaluates a map of parameters. */
export function evaluateParameters(
  parameters: Record<string, ValueTemplate>,
  variables: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parameters)) out[key] = evaluateValue(value, variables);
  return out;
}

/** Evaluates a condition; anything but a boolean is an error naming the expression. */
export function evaluateCondition(expr: CompiledExpression, variables: Record<string, unknown>): boolean {
  const value = expr.evaluate(variables);
  if (typeof value !== 'boolean')
    throw new ExpressionError(
      'expression_not_boolean',
      `${expr.source}: expected true or false, got ${JSON.stringify(value)}`,
    );
  return value;
}
