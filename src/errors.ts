// The one error base of the code base. Every error raised on purpose extends GatewayError: a stable
// machine-readable `code` callers branch on (never the message) and `statusCode`, the HTTP status it
// answers with when it reaches a client (500 when it never should). The status lives on the error, as in
// Fastify's error catalogue, so each API surface has one renderer and no status table of its own.
// A ground-floor module: it imports nothing and every module may import it.

/** What an error may carry besides its code, status and message. */
export interface GatewayErrorOptions {
  /** Safe, structured context for the client (the v2 envelope's `details`). */
  details?: Record<string, unknown> | null;
  /** Seconds for a Retry-After header, when backing off helps. */
  retryAfter?: number;
  cause?: unknown;
}

/** Base class of every error the gateway (and its client SDK) raises on purpose. */
export class GatewayError extends Error {
  readonly code: string;
  /** The HTTP status this error answers with (Fastify's name, so its own errors read the same way). */
  readonly statusCode: number;
  readonly details: Record<string, unknown> | null;
  readonly retryAfter: number | undefined;

  constructor(code: string, statusCode: number, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
    this.details = options.details ?? null;
    this.retryAfter = options.retryAfter;
  }
}
