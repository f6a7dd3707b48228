// Extra HTTP headers of the client: validation of caller-supplied names and values (a bad header is a
// ComfyArgumentError before any I/O, not a transport failure mid-run) and the case-insensitive merge
// of per-call headers over the client's constructor headers.
import { copyValidHeaders, type HeaderRules, TRANSPORT_HEADERS } from '../http-headers.ts';
import { ComfyArgumentError } from './errors.ts';

/** Bound of one call's extra headers (servers answer 431 long before this). */
const MAX_CALL_HEADERS = 32;
/** The constructor's headers: any valid header. */
const CLIENT_RULES: HeaderRules = { label: 'header', context: 'headers: ' };
/** Per-call headers may not replace what the transport sets (framing, hop-by-hop, the body's content type). */
const CALL_RULES: HeaderRules = {
  label: 'header',
  context: 'options.headers: ',
  maxCount: MAX_CALL_HEADERS,
  reserved: { isReserved: (name) => TRANSPORT_HEADERS.has(name), owner: 'the client', suffix: ' per call' },
};

/** Validated headers with lower-case names (so `X-Request-Id` and `x-request-id` are one header). */
export type HeaderMap = Readonly<Record<string, string>>;

const EMPTY: HeaderMap = Object.freeze({});

/**
 * The prototype of the maps callHeaders builds (frozen, so they cannot change after validation;
 * only this module creates them). A run validates its headers once and hands the map to every call
 * it makes (POST /prompt, polls, the cancel); those calls take it as it is instead of validating and
 * copying it again. A class rather than a WeakSet of maps: adding to a WeakSet cost ~0.6 µs a run.
 */
class CallHeaderMap {}

/** Validates the client's constructor headers; names are lower-cased. */
export function clientHeaders(headers: Record<string, string> | undefined): HeaderMap {
  return normalize(headers, 'headers', false);
}

/** Validates one call's `headers` option (reserved names refused); names are lower-cased. */
export function callHeaders(headers: Record<string, string> | undefined): HeaderMap {
  return normalize(headers, 'options.headers', true);
}

function normalize(headers: Record<string, string> | undefined, what: string, perCall: boolean): HeaderMap {
  if (headers === undefined) return EMPTY;
  if (perCall && headers instanceof CallHeaderMap) return headers;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw new ComfyArgumentError(`${what} must be an object of header names to string values`);
  if (Object.keys(headers).length === 0) return EMPTY;
  const out = copyValidHeaders(
    headers,
    perCall ? CALL_RULES : CLIENT_RULES,
    (message) => new ComfyArgumentError(message),
    (perCall ? new CallHeaderMap() : {}) as Record<string, string>,
  );
  return Object.freeze(out);
}
