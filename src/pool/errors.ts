// The pool's error classes. Callers (scheduler, HTTP routes) branch on the stable `code`; the ones
// the instance routes meet carry their HTTP status.
import { GatewayError } from '../errors.ts';

/** Base class of every error the pool throws. */
export class PoolError extends GatewayError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('pool_error', 500, message, options);
  }
}

/** An instance id that the pool does not know (never added, or already removed). */
export class InstanceNotFoundError extends PoolError {
  override readonly code = 'instance_not_found';
  override readonly statusCode = 404;
  readonly instanceId: string;

  constructor(instanceId: string) {
    super(`unknown instance '${instanceId}'`);
    this.instanceId = instanceId;
  }
}

/** An instance with the same id or URL is already in the pool. */
export class InstanceExistsError extends PoolError {
  override readonly code = 'instance_exists';
  override readonly statusCode = 409;
  readonly instanceId: string;

  constructor(instanceId: string, message?: string) {
    super(message ?? `instance '${instanceId}' already exists`);
    this.instanceId = instanceId;
  }
}

/** An instance configuration that cannot be used (bad URL, weight, max jobs...). */
export class InvalidInstanceConfigError extends PoolError {
  override readonly code = 'invalid_instance_config';
  override readonly statusCode = 422;
  /** The setting at fault, e.g. `url` or `COMFYUI_HOST_2`. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** The pool was closed; leases and instances are no longer served. */
export class PoolClosedError extends PoolError {
  override readonly code = 'pool_closed';
  override readonly statusCode = 503;

  constructor() {
    super('the instance pool is closed');
  }
}

/** The instance running a lease was declared down (breaker opened) or removed: the lease's work is lost. */
export class InstanceDownError extends PoolError {
  override readonly code = 'instance_down';
  readonly instanceId: string;

  constructor(instanceId: string, reason: string) {
    super(`instance '${instanceId}' is down: ${reason}`);
    this.instanceId = instanceId;
  }
}

/** A managed ComfyUI process could not be started or did not become ready in time. */
export class ManagedProcessError extends PoolError {
  override readonly code = 'managed_process_failed';
}
