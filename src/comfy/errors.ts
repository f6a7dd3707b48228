// The client's error hierarchy. Callers branch on the stable `code` (never on messages) and on
// `retryable`, which is true only for infrastructure failures worth trying again elsewhere. Every one
// is a GatewayError whose HTTP status is 502: to a gateway's caller, a failing ComfyUI is an upstream.
import { GatewayError } from '../errors.ts';

/** Context shared by every client error. */
export interface ComfyErrorContext {
  promptId?: string;
  baseUrl?: string;
  cause?: unknown;
}

/** Base class of every error the ComfyUI client throws. */
export class ComfyError extends GatewayError {
  readonly retryable: boolean = false;
  promptId?: string;
  baseUrl?: string;

  constructor(message: string, context: ComfyErrorContext = {}) {
    super('comfy_error', 502, message, { cause: context.cause });
    if (context.promptId !== undefined) this.promptId = context.promptId;
    if (context.baseUrl !== undefined) this.baseUrl = context.baseUrl;
  }
}

/** The server could not be reached, the connection broke, or a prompt vanished (server restart). */
export class ComfyConnectionError extends ComfyError {
  override readonly code = 'comfy_connection';
  override readonly retryable = true;
  /** True when the request provably never reached the server (connection refused / not connected). */
  readonly notSent: boolean;

  constructor(message: string, context: ComfyErrorContext & { notSent?: boolean } = {}) {
    super(message, context);
    this.notSent = context.notSent ?? false;
  }
}

/** A request or a run exceeded its deadline. */
export class ComfyTimeoutError extends ComfyError {
  override readonly code = 'comfy_timeout';
}

/** The caller aborted the operation through its AbortSignal. */
export class ComfyAbortError extends ComfyError {
  override readonly code = 'comfy_aborted';
}

/** ComfyUI's `error` object of a rejected prompt, unchanged. */
export interface ComfyValidationDetail {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** POST /prompt answered 400: carries ComfyUI's `error` and `node_errors` unchanged. */
export class ComfyValidationError extends ComfyError {
  override readonly code = 'comfy_validation';
  readonly error: ComfyValidationDetail;
  readonly nodeErrors: Record<string, unknown>;

  constructor(
    error: ComfyValidationDetail,
    nodeErrors: Record<string, unknown>,
    context: ComfyErrorContext = {},
  ) {
    super(validationMessage(error, nodeErrors), context);
    this.error = error;
    this.nodeErrors = nodeErrors;
  }
}

function validationMessage(error: ComfyValidationDetail, nodeErrors: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [nodeId, value] of Object.entries(nodeErrors)) {
    const entry = value as { class_type?: unknown; errors?: Array<{ message?: unknown; details?: unknown }> };
    for (const e of Array.isArray(entry.errors) ? entry.errors : []) {
      const detail = typeof e.details === 'string' && e.details !== '' ? `: ${e.details}` : '';
      parts.push(`node ${nodeId} (${String(entry.class_type ?? '?')}): ${String(e.message)}${detail}`);
    }
  }
  const head = error.details ? `${error.message}: ${error.details}` : error.message;
  return parts.length > 0 ? `${head} (${parts.join('; ')})` : head;
}

/** A node raised during execution (`execution_error`, ExecutionBlocked excepted). */
export class ComfyExecutionError extends ComfyError {
  override readonly code = 'comfy_execution';
  readonly nodeId: string;
  readonly nodeType: string;
  readonly exceptionType: string;
  readonly exceptionMessage: string;
  readonly traceback: string[];
  /** The raw `execution_error` data as ComfyUI sent it. */
  readonly data: Record<string, unknown>;

  constructor(data: Record<string, unknown>, context: ComfyErrorContext = {}) {
    const nodeId = String(data.node_id ?? '');
    const nodeType = String(data.node_type ?? '');
    const exceptionType = String(data.exception_type ?? 'Exception');
    const exceptionMessage = String(data.exception_message ?? '').trim();
    super(`node ${nodeId} (${nodeType}) failed: ${exceptionType}: ${exceptionMessage}`, context);
    this.nodeId = nodeId;
    this.nodeType = nodeType;
    this.exceptionType = exceptionType;
    this.exceptionMessage = exceptionMessage;
    this.traceback = Array.isArray(data.traceback) ? data.traceback.map(String) : [];
    this.data = data;
  }
}

/** The prompt was interrupted on the server (`execution_interrupted`). */
export class ComfyInterruptedError extends ComfyError {
  override readonly code = 'comfy_interrupted';
  readonly nodeId?: string;
  readonly nodeType?: string;

  constructor(message: string, context: ComfyErrorContext & { nodeId?: string; nodeType?: string } = {}) {
    super(message, context);
    if (context.nodeId !== undefined) this.nodeId = context.nodeId;
    if (context.nodeType !== undefined) this.nodeType = context.nodeType;
  }
}

/** The server answered with an unexpected status or body; 5xx are retryable. */
export class ComfyServerError extends ComfyError {
  override readonly code = 'comfy_server';
  override readonly retryable: boolean;
  readonly status: number;
  readonly body: string;

  constructor(message: string, status: number, body: string, context: ComfyErrorContext = {}) {
    super(message, context);
    this.status = status;
    this.body = body;
    this.retryable = status >= 500 || status === 429;
  }
}

/** The client was closed; every call after `close()` fails with this. */
export class ComfyClosedError extends ComfyError {
  override readonly code = 'comfy_closed';
}

/** Bad arguments given to the client (e.g. an empty prompt id or an unknown file type). */
export class ComfyArgumentError extends ComfyError {
  override readonly code = 'comfy_invalid_argument';
}
