// Error classes of the pipeline module: stable codes and the HTTP status the server maps them to
// (they extend the one GatewayError, so the one error handler renders them).
import { GatewayError } from '../errors.ts';
import type { DefinitionIssue } from './definition.ts';

/** A definition that cannot run (422 `invalid_pipeline`); `details.issues` says where each problem is. */
export class InvalidPipelineError extends GatewayError {
  constructor(issues: DefinitionIssue[], pipeline: string | null = null) {
    super(
      'invalid_pipeline',
      422,
      `Invalid pipeline${pipeline ? ` "${pipeline}"` : ''}: ${issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}${issues.length > 5 ? ` (and ${issues.length - 5} more)` : ''}`,
      { details: { ...(pipeline ? { pipeline } : {}), issues } },
    );
  }
}

/** Inputs that fail the pipeline's declaration (422 `invalid_inputs`). */
export class InvalidInputsError extends GatewayError {
  constructor(issues: Array<{ input: string | null; code: string; message: string }>) {
    super('invalid_inputs', 422, `Invalid inputs: ${issues.map((i) => i.message).join('; ')}`, {
      details: { issues },
    });
  }
}

/** No run with that id (404). */
export class RunNotFoundError extends GatewayError {
  constructor(id: string) {
    super('not_found', 404, `No pipeline run ${id}.`);
  }
}

/** Too many runs are active (429 + Retry-After). */
export class TooManyRunsError extends GatewayError {
  constructor(max: number) {
    super(
      'too_many_runs',
      429,
      `At most ${max} pipeline runs may be active at once (PIPELINE_MAX_ACTIVE_RUNS).`,
      {
        retryAfter: 5,
      },
    );
  }
}

/** Why one iteration could not run or failed; becomes the run's error with its context. */
export class IterationError extends GatewayError {
  constructor(code: string, message: string, details: Record<string, unknown> | null = null) {
    super(code, 500, message, { details });
  }
}
