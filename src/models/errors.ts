// Errors of the models module: a stable `code` and the HTTP status each answers with, so routes
// and task records carry codes, never messages to parse.
import { GatewayError } from '../errors.ts';

/** Base of every error the models module raises on purpose. */
export class ModelsError extends GatewayError {}

/** A download request that cannot be used (bad folder, unsafe file name, bad hash). */
export class InvalidDownloadError extends ModelsError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, 422, message, { details });
  }
}

/** The URL may not be fetched (scheme, credentials, private address not allow-listed). */
export class ModelUrlForbiddenError extends ModelsError {
  constructor(message: string, cause?: unknown) {
    super('url_forbidden', 422, message, { cause });
  }
}

/** Downloads need MODELS_DIR. */
export class ModelsDirUnsetError extends ModelsError {
  constructor() {
    super('models_dir_unset', 409, 'Model downloads need MODELS_DIR to be set on the gateway.');
  }
}

/** The target file is being downloaded from another URL. */
export class DownloadConflictError extends ModelsError {
  constructor(target: string, taskId: string) {
    super('download_conflict', 409, `${target} is already being downloaded from another URL.`, {
      details: { target, task_id: taskId },
    });
  }
}

/** No such download task (unknown or removed after its TTL). */
export class DownloadNotFoundError extends ModelsError {
  constructor(id: string) {
    super('not_found', 404, `No model download ${JSON.stringify(id)}.`, { details: { id } });
  }
}

/** Too many tasks are known at once (a bound on the task map). */
export class TooManyDownloadsError extends ModelsError {
  constructor(max: number) {
    super('too_many_downloads', 429, `At most ${max} model downloads may be queued or running.`);
  }
}

/** Why one transfer failed: recorded on the task as {code, message}. */
export class DownloadFailedError extends ModelsError {
  /** True for a dropped connection or a 5xx: the transfer may resume. */
  readonly retryable: boolean;
  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(code, 502, message, { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}
