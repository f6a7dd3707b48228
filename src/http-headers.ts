// Caller-supplied HTTP headers, checked the same way wherever the gateway sends them on someone's
// behalf (the SDK's extra headers, webhook deliveries): RFC 9110 names, no control characters in
// values (header injection), bounded count and size, reserved names refused. A ground-floor module:
// it imports nothing and every module may import it. Messages never echo a value (it may be a credential).

/** RFC 9110 token: the characters a header name may use. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field value: visible ASCII, obs-text, space and tab; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Longest value accepted (servers answer 431 long before this). */
export const MAX_HEADER_VALUE_LENGTH = 8 * 1024;

/** Framing and hop-by-hop headers that only the sender itself may set. */
export const TRANSPORT_HEADERS: ReadonlySet<string> = new Set([
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

/** How one caller's headers are checked and named in messages. */
export interface HeaderRules {
  /** What one header is called in messages: "header", "webhook header". */
  label: string;
  /** Where the headers came from, put before every message (e.g. "options.headers: "). */
  context?: string;
  /** At most this many headers. */
  maxCount?: number;
  /** Names the caller may not set, and who sets them instead (e.g. "the dispatcher"). */
  reserved?: { isReserved(lowerName: string): boolean; owner: string; suffix?: string };
}

/**
 * Copies validated headers into `into` with lower-case names (case variants of one name: the last wins,
 * as with object spreads); throws `fail(message)` on the first problem.
 */
export function copyValidHeaders<T extends Record<string, string>>(
  headers: Record<string, unknown>,
  rules: HeaderRules,
  fail: (message: string) => Error,
  into: T,
): T {
  const where = rules.context ?? '';
  const entries = Object.entries(headers);
  if (rules.maxCount !== undefined && entries.length > rules.maxCount)
    throw fail(`${where}${entries.length} ${rules.label}s given (at most ${rules.maxCount})`);
  const out = into as Record<string, string>;
  for (const [name, value] of entries) {
    if (!TOKEN.test(name)) throw fail(`${where}invalid ${rules.label} name ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (rules.reserved?.isReserved(lower))
      throw fail(
        `${where}${rules.label} ${lower} is set by ${rules.reserved.owner} and cannot be overridden${rules.reserved.suffix ?? ''}`,
      );
    if (typeof value !== 'string')
      throw fail(`${where}${rules.label} ${lower} must be a string, got ${typeof value}`);
    if (!FIELD_VALUE.test(value))
      throw fail(`${where}${rules.label} ${lower} has a control character in its value`);
    if (value.length > MAX_HEADER_VALUE_LENGTH)
      throw fail(`${where}${rules.label} ${lower} is longer than ${MAX_HEADER_VALUE_LENGTH} characters`);
    out[lower] = value;
  }
  return into;
}
