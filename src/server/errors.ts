// The v2 API's one error renderer: every error a request can meet becomes the envelope
// `{error: {code, message, details}}`. Our errors carry their code and status (src/errors.ts), so
// this file knows none of them one by one; it adds only what they cannot say themselves: Fastify's
// own errors, and that an instance's failure is shown as a generic `upstream_error`.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ComfyError } from '../comfy/index.ts';
import { GatewayError } from '../errors.ts';

/** Too many event streams (SSE) are open on a route: 429, poll instead. */
export class TooManyStreamsError extends GatewayError {
  constructor(message: string) {
    super('too_many_streams', 429, message, { retryAfter: 5 });
  }
}

/** A rendered error: status, envelope and optional Retry-After seconds. */
export interface RenderedError {
  status: number;
  code: string;
  message: string;
  details: Record<string, unknown> | null;
  retryAfter?: number;
}

const FASTIFY_CODES: Record<string, { status: number; code: string; message?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    code: 'payload_too_large',
    message: 'The request body is too large.',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: 'invalid_request',
    message: 'The body is not valid JSON.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_request', message: 'The JSON body is empty.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_request' },
};

const STATUS_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  422: 'invalid_request',
  429: 'rate_limited',
  503: 'unavailable',
};

/**
 * Classifies any thrown value. `upstream_error` only ever means an instance failed; any other
 * unknown error is a local fault: a generic 500 internal_error.
 */
export function renderError(err: unknown): RenderedError {
  if (err instanceof ComfyError) {
    // Failures talking to an instance: never leak internals (v2 §10.1).
    return {
      status: err.statusCode,
      code: 'upstream_error',
      message: 'A ComfyUI instance failed to answer.',
      details: null,
    };
  }
  if (err instanceof GatewayError) {
    return {
      status: err.statusCode,
      code: err.code,
      message: err.message,
      details: err.details,
      ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
    };
  }
  const e = err as Partial<FastifyError>;
  if (typeof e.code === 'string' && e.code in FASTIFY_CODES) {
    const known = FASTIFY_CODES[e.code] as { status: number; code: string; message?: string };
    return {
      status: known.status,
      code: known.code,
      message: known.message ?? String(e.message),
      details: null,
    };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    return {
      status,
      code: STATUS_CODES[status] ?? 'invalid_request',
      message: String(e.message),
      details: null,
    };
  }
  return {
    status: 500,
    code: 'internal_error',
    message: 'Internal error; the request was not completed.',
    details: null,
  };
}

/** Sends a rendered error as the v2 envelope. */
export function sendError(reply: FastifyReply, rendered: RenderedError): FastifyReply {
  if (rendered.retryAfter !== undefined) reply.header('retry-after', String(rendered.retryAfter));
  return reply
    .code(rendered.status)
    .type('application/json; charset=utf-8')
    .send({ error: { code: rendered.code, message: rendered.message, details: rendered.details } });
}

/** Installs the envelope error handler and the 404 handler on an app. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const rendered = renderError(err);
    if ((err as { code?: unknown }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      rendered.message = unsupportedTypeMessage(request);
    if (rendered.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.debug({ err: { code: rendered.code, message: rendered.message } }, 'request rejected');
    return sendError(reply, rendered);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, {
      status: 404,
      code: 'not_found',
      message: `No route ${request.method} ${request.url.split('?')[0]}.`,
      details: null,
    }),
  );
}

/** 415's message: the type that came and the one(s) this route's scope reads. */
function unsupportedTypeMessage(request: FastifyRequest): string {
  const given = request.headers['content-type'] ?? 'none';
  const expected = request.server.hasContentTypeParser('multipart/form-data')
    ? 'application/json or multipart/form-data'
    : 'application/json';
  return `Unsupported Content-Type ${JSON.stringify(given)}: send the body as ${expected}.`;
}
