// Error classes of the job layer, each with a stable `code` and the HTTP status it answers with.
// The server's error handler turns any of these into the v2 envelope without knowing them one by one.
import { GatewayError } from '../errors.ts';

/** A request body, query or header that cannot be used (400). */
export class InvalidRequestError extends GatewayError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_request', 400, message, { details: details ?? null });
  }
}

/** The workflow is structurally invalid or ComfyUI rejected it (422). */
export class InvalidWorkflowError extends GatewayError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_workflow', 422, message, { details: details ?? null });
  }
}

/** The workflow has (or expands to) more nodes than MAX_WORKFLOW_NODES (422, with the count). */
export class TooManyNodesError extends GatewayError {
  constructor(nodes: number, limit: number) {
    super(
      'workflow_too_large',
      422,
      `The workflow has ${nodes} nodes (subgraphs expanded), more than the limit of ${limit}.`,
      { details: { nodes, limit } },
    );
  }
}

/** A UI-format workflow was sent and cannot be converted here (422). */
export class WorkflowFormatUiError extends GatewayError {
  constructor(message: string) {
    super('workflow_format_ui', 422, message);
  }
}

/** The Idempotency-Key was already used (422, v2 §11). */
export class IdempotencyKeyReuseError extends GatewayError {
  constructor(message = 'Idempotency-Key was already used; look up the job instead of resubmitting.') {
    super('idempotency_key_reuse', 422, message);
  }
}

/** Too many queued jobs (429 + Retry-After). */
export class QueueFullError extends GatewayError {
  constructor(retryAfter: number) {
    super('queue_full', 429, 'The job queue is full; retry later.', { retryAfter });
  }
}

/** A sync call found no healthy instance able to run its workflow (503 + Retry-After). */
export class NoInstanceAvailableError extends GatewayError {
  constructor(retryAfter: number, details?: Record<string, unknown>) {
    super(
      'no_instance_available',
      503,
      'No healthy instance can run this workflow now; retry later or submit it asynchronously.',
      { retryAfter, details: details ?? null },
    );
  }
}

/** Unknown job id, or past retention (404). */
export class JobNotFoundError extends GatewayError {
  constructor(id: string) {
    super('not_found', 404, `Job ${id} not found.`);
  }
}

/** The gateway is shutting down and takes no new work (503). */
export class ShuttingDownError extends GatewayError {
  constructor() {
    super('shutting_down', 503, 'The gateway is shutting down; retry on another replica.', { retryAfter: 5 });
  }
}

/** A transition the job state machine forbids; a programming error, never user input. */
export class InvalidTransitionError extends GatewayError {
  constructor(from: string, to: string) {
    super('invalid_transition', 500, `Job cannot go from ${from} to ${to}.`);
  }
}

/** Every conversion worker is busy and their queue is full, or a conversion ran past its deadline (503). */
export class ConversionBusyError extends GatewayError {
  constructor(message: string) {
    super('conversion_busy', 503, message, { retryAfter: 1 });
  }
}

/** The job store cannot commit (disk full, file gone): nothing was recorded or started (503). */
export class StorageUnavailableError extends GatewayError {
  constructor(message: string, cause?: unknown) {
    super('storage_unavailable', 503, message, { retryAfter: 5, cause });
  }
}

/** The job database cannot be opened at start-up; `message` is the one line to show the operator. */
export class StoreOpenError extends GatewayError {
  constructor(path: string, problem: string) {
    super('store_open_failed', 500, `Cannot open the job store ${path}: ${problem}`);
  }
}
