// Python-compatible JSON: a parser that keeps what JSON.parse loses (key order of integer-like keys,
// float-vs-int literals, integers beyond 2^53) and a serialiser that writes like Python's json.dumps
// defaults (", " / ": " separators, ensure_ascii, float repr). ComfyUI echoes prompts back verbatim,
// so a client comparing bodies byte for byte needs both halves.

import {
  KEY_ORDER,
  keysOf,
  ordered,
  PyFloat,
  pyFloatRepr,
  pyKeys,
  pySet,
  toNumber,
} from '../workflow/index.ts';

// The value model (PyFloat, dict key order) lives with ComfyUI's validation rules in the workflow
// module; the simulator's parser and serialiser build on it.
export { KEY_ORDER, ordered, PyFloat, pyFloatRepr, pyKeys, pySet, toNumber };

type Obj = Record<string, unknown> & { [KEY_ORDER]?: string[] };

/** Error raised for text that Python's json.loads would reject. */
export class PyJsonSyntaxError extends Error {
  readonly code = 'py_json_syntax';
}

/** Deep copy preserving key order and PyFloat wrappers. */
export function pyClone<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => pyClone(x)) as T;
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, pyClone(x)])) as T;
  if (v !== null && typeof v === 'object' && !(v instanceof PyFloat)) {
    return ordered(pyKeys(v).map((k) => [k, pyClone((v as Record<string, unknown>)[k])])) as T;
  }
  return v;
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;

/** Parses JSON like Python's json.loads (accepts NaN/Infinity, keeps key order and float literals). */
export function parsePyJson(text: string): unknown {
  let i = 0;
  const n = text.length;
  const fail = (msg: string): never => {
    throw new PyJsonSyntaxError(`${msg}: char ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const parseString = (): string => {
    i++; // opening quote
    let out = '';
    let start = i;
    while (true) {
      if (i >= n) fail('Unterminated string');
      const c = text.charCodeAt(i);
      if (c === 34) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c === 92) {
        out += text.slice(start, i);
        const e = text[i + 1];
        i += 2;
        if (e === 'u') {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('Invalid \\uXXXX escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          i += 4;
        } else {
          const map: Record<string, string> = {
            '"': '"',
            '\\': '\\',
            '/': '/',
            b: '\b',
            f: '\f',
            n: '\n',
            r: '\r',
            t: '\t',
          };
          const m = e === undefined ? undefined : map[e];
          if (m === undefined) fail('Invalid \\escape');
          out += m;
        }
        start = i;
        continue;
      }
      if (c < 32) fail('Invalid control character');
      i++;
    }
  };
  const parseValue = (depth: number): unknown => {
    if (depth > 900) fail('Too deeply nested');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      // Built like ordered(): a repeated key keeps its first position and takes the last value.
      const out: Obj = {};
      const keys: string[] = [];
      ws();
      if (text[i] === '}') {
        i++;
        out[KEY_ORDER] = keys;
        return out;
      }
      while (true) {
        ws();
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const key = parseString();
        ws();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        const v = parseValue(depth + 1);
        if (!Object.hasOwn(out, key)) keys.push(key);
        out[key] = v;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          out[KEY_ORDER] = keys;
          return out;
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      while (true) {
        arr.push(parseValue(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (c === '"') return parseString();
    // Dispatch on the first character (the literals and numbers cannot share one).
    if (c === 't' && text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (c === 'f' && text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (c === 'n' && text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    if (c === 'N' && text.startsWith('NaN', i)) {
      i += 3;
      return new PyFloat(Number.NaN);
    }
    if (c === 'I' && text.startsWith('Infinity', i)) {
      i += 8;
      return new PyFloat(Number.POSITIVE_INFINITY);
    }
    if (c === '-' && text.startsWith('-Infinity', i)) {
      i += 9;
      return new PyFloat(Number.NEGATIVE_INFINITY);
    }
    // Plain integers (the usual number) without the regex: digits not followed by a fraction or exponent.
    let j = c === '-' ? i + 1 : i;
    const d0 = text.charCodeAt(j);
    if (d0 >= 48 && d0 <= 57) {
      j++;
      if (d0 !== 48) while (j < n && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
      const next = text.charCodeAt(j);
      if (next !== 46 && next !== 101 && next !== 69 && j - i <= 15) {
        const v = Number(text.slice(i, j));
        i = j;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    let m = NUMBER.exec(text);
    // Numbers are read from a 400-character window; the window only matters for very long ones.
    if (!m || m[0].length > 390) m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail('Expecting value');
    i += m[0].length;
    if (m[1] !== undefined || m[2] !== undefined) return new PyFloat(Number(m[0]));
    const v = Number(m[0]);
    return Number.isSafeInteger(v) ? v : BigInt(m[0]);
  };
  const value = parseValue(0);
  ws();
  if (i !== n) fail('Extra data');
  return value;
}

function pyString(s: string): string {
  // Printable ASCII without a double quote or backslash is written as it is.
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) break;
    i++;
  }
  if (i === s.length) return `"${s}"`;
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Serialises like Python's json.dumps(value) with default options. */
export function pyDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return pyString(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return 'null';
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    let out = `[${pyDumps(value[0])}`;
    for (let i = 1; i < value.length; i++) out += `, ${pyDumps(value[i])}`;
    return `${out}]`;
  }
  let out = '{';
  if (value instanceof Map) {
    for (const [k, v] of value) out += `${out.length > 1 ? ', ' : ''}${pyString(String(k))}: ${pyDumps(v)}`;
    return `${out}}`;
  }
  const obj = value as Record<string, unknown>;
  const keys = keysOf(obj);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = obj[k];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ', ' : ''}${pyString(k)}: ${pyDumps(v)}`;
  }
  return `${out}}`;
}
