// Extra HTTP headers of the client: validation of caller-supplied names and values (a bad header is a
// ComfyArgumentError before any I/O, not a transport failure mid-run) and the case-insensitive merge
// of per-call headers over the client's constructor headers.
import { ComfyArgumentError } from './errors.ts';

/** RFC 9110 token: the characters a header name may use. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field value: visible ASCII, obs-text, space and tab; never CR, LF or NUL (header injection). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the transport owns per request: framing, hop-by-hop, and the body's content type. */
const RESERVED = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
/** Bounds of one call's extra headers (servers answer 431 long before these). */
const MAX_CALL_HEADERS = 32;
const MAX_VALUE_LENGTH = 8 * 1024;

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
  const entries = Object.entries(headers);
  if (entries.length === 0) return EMPTY;
  if (perCall && entries.length > MAX_CALL_HEADERS)
    throw new ComfyArgumentError(`${what} has ${entries.length} headers (at most ${MAX_CALL_HEADERS})`);
  const out = (perCall ? new CallHeaderMap() : {}) as Record<string, string>;
  for (const [name, value] of entries) {
    if (!TOKEN.test(name))
      throw new ComfyArgumentError(`${what}: invalid header name ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (perCall && RESERVED.has(lower))
      throw new ComfyArgumentError(
        `${what}: ${lower} is set by the client and cannot be overridden per call`,
      );
    if (typeof value !== 'string')
      throw new ComfyArgumentError(`${what}: header ${lower} must be a string, got ${typeof value}`);
    // The value is left out of the message: it may be a credential.
    if (!FIELD_VALUE.test(value))
      throw new ComfyArgumentError(`${what}: header ${lower} has a control character in its value`);
    if (value.length > MAX_VALUE_LENGTH)
      throw new ComfyArgumentError(`${what}: header ${lower} is longer than ${MAX_VALUE_LENGTH} characters`);
    // Case variants of one name: the last wins, as with the object spreads callers merge layers with.
    out[lower] = value;
  }
  return Object.freeze(out);
}
