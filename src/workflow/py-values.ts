// Python's value model for JSON, as ComfyUI (a Python program) holds a parsed prompt: dicts keep
// their insertion order (integer-like keys included, unlike JS objects), floats stay floats (`42.0`),
// and str()/repr() print values the way ComfyUI's f-strings do ("Value 0 smaller than min of 1",
// "upscale_method: 'magic' not in ['nearest-exact', ...]"). Plain JSON values are valid too: an
// object without a recorded order iterates in its JS key order, a number is an int when integral.

/** Own-key order recorded by `parsePyJson` (integer-like keys included, unlike JS objects). */
export const KEY_ORDER: unique symbol = Symbol('py-json.keyOrder');

/** A number that Python holds as a float (serialised with a decimal point, e.g. `42.0`). */
export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
}

type Obj = Record<string, unknown> & { [KEY_ORDER]?: string[] };

/** Builds a plain object that serialises its keys in the given order. */
export function ordered(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Obj = {};
  const keys: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const k = e[0];
    if (!Object.hasOwn(out, k)) keys.push(k);
    out[k] = e[1];
  }
  out[KEY_ORDER] = keys;
  return out;
}

/** pyKeys without the copy: may return the recorded order array itself, so never mutate it. */
export function keysOf(obj: object): readonly string[] {
  const order = (obj as Obj)[KEY_ORDER];
  const own = Object.keys(obj);
  if (!order) return own;
  // Usual case: the recorded order still names exactly the own keys (none deleted or added).
  if (order.length === own.length) {
    let i = 0;
    while (i < order.length && Object.hasOwn(obj, order[i]!)) i++;
    if (i === order.length) return order;
  }
  const present = order.filter((k) => Object.hasOwn(obj, k));
  const seen = new Set(present);
  for (const k of own) if (!seen.has(k)) present.push(k);
  return present;
}

/** Own keys of an object in Python order (parse order first, then later additions). */
export function pyKeys(obj: object): string[] {
  const keys = keysOf(obj);
  return keys === (obj as Obj)[KEY_ORDER] ? keys.slice() : (keys as string[]);
}

/** Sets a key on an object, recording it in the Python key order. */
export function pySet(obj: Record<string, unknown>, key: string, value: unknown): void {
  const o = obj as Obj;
  if (!Object.hasOwn(o, key)) {
    if (!o[KEY_ORDER]) o[KEY_ORDER] = Object.keys(o);
    else {
      // A key deleted earlier comes back at the end, as in a Python dict (and only once).
      const stale = o[KEY_ORDER].indexOf(key);
      if (stale >= 0) o[KEY_ORDER].splice(stale, 1);
    }
    o[KEY_ORDER].push(key);
  }
  o[key] = value;
}

/** Numeric value of a parsed number (PyFloat, number or bigint), or undefined. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** Python's repr() of a float. */
export function pyFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  // Integral values below 1e16 print as their digits and ".0" (1.0, -42.0).
  if (Number.isInteger(v) && v < 1e16 && v > -1e16) return `${v}.0`;
  const [mant, expStr] = v.toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1);
      body = `${intPart}.${frac || '0'}`;
    } else {
      body = `0.${'0'.repeat(-exp - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const sign = exp < 0 ? '-' : '+';
    body = `${m}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return neg ? `-${body}` : body;
}

/** Python repr() of a string. */
export function pyReprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 32 || c === 127) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return quote + out + quote;
}

/** Python repr() of a parsed JSON value. */
export function pyRepr(v: unknown): string {
  if (typeof v === 'string') return pyReprString(v);
  return pyStr(v);
}

/** Python str() of a parsed JSON value. */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    const r = pyFloatRepr(v);
    return r === 'NaN' ? 'nan' : r === 'Infinity' ? 'inf' : r === '-Infinity' ? '-inf' : r;
  }
  if (v instanceof PyFloat) {
    const r = pyFloatRepr(v.value);
    return r === 'NaN' ? 'nan' : r === 'Infinity' ? 'inf' : r === '-Infinity' ? '-inf' : r;
  }
  if (Array.isArray(v)) return `[${v.map((x) => pyRepr(x)).join(', ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${pyKeys(o)
      .map((k) => `${pyReprString(k)}: ${pyRepr(o[k])}`)
      .join(', ')}}`;
  }
  return String(v);
}

/** A Python exception raised while validating: its type name, str() and traceback frames. */
export class PyException extends Error {
  readonly pyType: string;
  readonly frames: string[];
  constructor(pyType: string, message: string, frames: string[] = []) {
    super(message);
    this.pyType = pyType;
    this.frames = frames;
  }
}

/** Python's type(v).__name__ of a parsed JSON value. */
export function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'object') return 'dict';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  return typeof v === 'boolean' ? 'bool' : 'str';
}

// Python's decimal literals as int() and float() read them: single underscores between digits.
const DIGITS = '\\d(?:_?\\d)*';
const PY_INT = new RegExp(`^[-+]?${DIGITS}$`);
const PY_FLOAT = new RegExp(`^[-+]?(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:e[-+]?${DIGITS})?$`);

/**
 * What ComfyUI's `int(val)`, `float(val)`, `str(val)`, `bool(val)` make of a widget value of that
 * type; throws PyException where Python raises. `exact` keeps Python's number types (floats as
 * PyFloat, integers past 2^53 as bigint); otherwise plain JSON numbers.
 */
export function pyConvert(type: string, val: unknown, exact: boolean): unknown {
  if (type === 'INT') {
    if (typeof val === 'boolean') return val ? 1 : 0;
    if (typeof val === 'bigint') return val;
    const n = toNumber(val);
    if (n !== undefined) {
      if (Number.isNaN(n)) throw new PyException('ValueError', 'cannot convert float NaN to integer');
      if (!Number.isFinite(n))
        throw new PyException('OverflowError', 'cannot convert float infinity to integer');
      return Math.trunc(n);
    }
    if (typeof val === 'string') {
      if (PY_INT.test(val.trim())) {
        const s = val.trim().replaceAll('_', '');
        if (!exact) return Number(s);
        const b = BigInt(s);
        return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
      }
      throw new PyException('ValueError', `invalid literal for int() with base 10: ${pyRepr(val)}`);
    }
    throw new PyException(
      'TypeError',
      `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(val)}'`,
    );
  }
  if (type === 'FLOAT') {
    const float = (x: number) => (exact ? new PyFloat(x) : x);
    if (typeof val === 'boolean') return float(val ? 1 : 0);
    const n = toNumber(val);
    if (n !== undefined) return float(n);
    if (typeof val === 'string') {
      const s = val.trim().toLowerCase();
      if (PY_FLOAT.test(s)) return float(Number(s.replaceAll('_', '')));
      if (/^[-+]?(inf|infinity)$/.test(s)) return float(s.startsWith('-') ? -Infinity : Infinity);
      if (/^[-+]?nan$/.test(s)) return float(Number.NaN);
      throw new PyException('ValueError', `could not convert string to float: ${pyRepr(val)}`);
    }
    throw new PyException(
      'TypeError',
      `float() argument must be a string or a real number, not '${pyTypeName(val)}'`,
    );
  }
  if (type === 'STRING') return pyStr(val);
  if (type === 'BOOLEAN') {
    if (typeof val === 'string' || Array.isArray(val)) return val.length > 0;
    if (val !== null && typeof val === 'object' && !(val instanceof PyFloat)) return pyKeys(val).length > 0;
    const n = toNumber(val);
    if (n !== undefined) return n !== 0;
    return Boolean(val);
  }
  return val;
}

/** Python's `a < b` for two parsed numbers (int, float or bigint); false when either is not a number. */
export function pyLessThan(a: unknown, b: unknown): boolean {
  if (typeof a === 'bigint' && typeof b === 'number' && Number.isInteger(b)) return a < BigInt(b);
  if (typeof b === 'bigint' && typeof a === 'number' && Number.isInteger(a)) return BigInt(a) < b;
  const na = toNumber(a);
  const nb = toNumber(b);
  return na !== undefined && nb !== undefined && na < nb;
}
