// Caller-supplied extra headers of a webhook delivery (e.g. `x-request-id`): names and values
// validated, names lower-cased, and the headers the dispatcher owns (signature, framing, content type)
// refused so a caller can never weaken or forge what a receiver verifies.
import { WebhookHeaderError } from './errors.ts';

/** RFC 9110 token: the characters a header name may use. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field value: visible ASCII, obs-text, space and tab; never CR, LF or NUL (header injection). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the dispatcher sets itself (`webhook-*` is refused as a prefix: the spec may add more). */
const RESERVED = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'user-agent',
  'host',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'expect',
]);
const MAX_HEADERS = 32;
const MAX_VALUE_LENGTH = 8 * 1024;

/** Validated extra headers with lower-case names; throws WebhookHeaderError (never echoing values). */
export function webhookHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  if (headers === undefined) return {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw new WebhookHeaderError('webhook headers must be an object of header names to string values');
  const entries = Object.entries(headers);
  if (entries.length > MAX_HEADERS)
    throw new WebhookHeaderError(`${entries.length} webhook headers given (at most ${MAX_HEADERS})`);
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (!TOKEN.test(name))
      throw new WebhookHeaderError(`invalid webhook header name ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (RESERVED.has(lower) || lower.startsWith('webhook-'))
      throw new WebhookHeaderError(
        `webhook header ${lower} is set by the dispatcher and cannot be overridden`,
      );
    if (typeof value !== 'string')
      throw new WebhookHeaderError(`webhook header ${lower} must be a string, got ${typeof value}`);
    // Values are never put in messages: they may be credentials.
    if (!FIELD_VALUE.test(value))
      throw new WebhookHeaderError(`webhook header ${lower} has a control character in its value`);
    if (value.length > MAX_VALUE_LENGTH)
      throw new WebhookHeaderError(`webhook header ${lower} is longer than ${MAX_VALUE_LENGTH} characters`);
    // Case variants of one name: the last wins, as with object spreads.
    out[lower] = value;
  }
  return out;
}
