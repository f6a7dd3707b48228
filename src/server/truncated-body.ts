// Recognises a request body that ended early (a client aborting an upload, a multipart body cut
// short): the client's fault, answered 400 and logged below error level, never a 500.

const TRUNCATED_MESSAGES = /unexpected end of (multipart data|form|file)|terminated early|^aborted$/i;
const TRUNCATED_CODES = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

/** True when `err` says the request body was cut short. */
export function isTruncatedBody(err: unknown): boolean {
  const e = err as { message?: unknown; code?: unknown; cause?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && TRUNCATED_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && TRUNCATED_MESSAGES.test(e.message)) return true;
  return e.cause !== undefined && e.cause !== err && isTruncatedBody(e.cause);
}
