// Python's str()/repr() of JSON-like values, for the messages ComfyUI builds with f-strings
// ("Value 0 smaller than min of 1", "upscale_method: 'magic' not in ['nearest-exact', ...]").
import { PyFloat, pyFloatRepr, pyKeys } from './py-json.ts';

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
