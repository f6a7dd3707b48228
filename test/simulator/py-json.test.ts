// The fast paths of py-json (plain-string check, recorded key order reused, sticky number match,
// objects built in the parser) against straightforward reference versions: same bytes for any
// value, including objects whose keys were deleted or added after they were built.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  KEY_ORDER,
  ordered,
  PyFloat,
  parsePyJson,
  pyDumps,
  pyFloatRepr,
  pyKeys,
  pySet,
} from '../../src/simulator/py-json.ts';

function refKeys(obj: object): string[] {
  const order = (obj as { [KEY_ORDER]?: string[] })[KEY_ORDER];
  const own = Object.keys(obj);
  if (!order) return own;
  const present = order.filter((k) => Object.hasOwn(obj, k));
  const seen = new Set(present);
  for (const k of own) if (!seen.has(k)) present.push(k);
  return present;
}

function refString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** pyDumps as it was written first (join-based, keys filtered every time). */
function refDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (typeof value === 'string') return refString(value);
  if (Array.isArray(value)) return `[${value.map((v) => refDumps(v)).join(', ')}]`;
  if (value instanceof Map) {
    const parts: string[] = [];
    for (const [k, v] of value) parts.push(`${refString(String(k))}: ${refDumps(v)}`);
    return `{${parts.join(', ')}}`;
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of refKeys(obj)) {
      const v = obj[k];
      if (v === undefined) continue;
      parts.push(`${refString(k)}: ${refDumps(v)}`);
    }
    return `{${parts.join(', ')}}`;
  }
  return 'null';
}

const key = fc.oneof(
  fc.constantFrom('1', '2', '10', 'a', 'class_type', 'inputs', 'prompt_id', '__value__'),
  fc.string({ maxLength: 6 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
);
const leaf = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.integer(),
  fc.double().map((d) => new PyFloat(d)),
  fc.maxSafeInteger().map((d) => new PyFloat(d)),
  fc.constantFrom(1e16, -1e16, 1e16 - 2, 2 ** 60, 1e21, -0).map((d) => new PyFloat(d)),
  fc.double(),
  fc.bigInt().map((b) => (Number.isSafeInteger(Number(b)) ? b * 10n ** 20n : b)),
  fc.string({ maxLength: 10 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('ordered'), tie('plain'), tie('map')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  plain: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  map: fc.array(fc.tuple(key, tie('value')), { maxLength: 3 }).map((e) => new Map(e)),
  // Ordered objects, then edited the ways the simulator edits them (delete, pySet, plain assignment).
  ordered: fc
    .tuple(
      fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }),
      fc.array(fc.tuple(fc.constantFrom('delete', 'pySet', 'assign'), key, tie('value')), { maxLength: 3 }),
    )
    .map(([entries, edits]) => {
      const o = ordered(entries as Array<[string, unknown]>);
      for (const [op, k, v] of edits) {
        if (op === 'delete') delete o[k];
        else if (op === 'pySet') pySet(o, k, v);
        else o[k] = v;
      }
      return o;
    }),
}));

describe('py-json fast paths', () => {
  it('pyDumps writes the same bytes as the reference serialiser', () => {
    fc.assert(
      fc.property(value, (v) => {
        assert.equal(pyDumps(v), refDumps(v));
      }),
      { numRuns: 3000 },
    );
  });

  it('pyKeys returns a copy of the recorded order (callers may change it)', () => {
    const o = ordered([
      ['b', 1],
      ['a', 2],
    ]);
    const keys = pyKeys(o);
    keys.push('zzz');
    assert.deepEqual(pyKeys(o), ['b', 'a']);
    assert.equal(pyDumps(o), '{"b": 1, "a": 2}');
    delete o.b;
    o.c = 3;
    assert.equal(pyDumps(o), '{"a": 2, "c": 3}');
  });

  it('parsePyJson round-trips what pyDumps writes, key order and floats included', () => {
    fc.assert(
      fc.property(value, (v) => {
        const text = pyDumps(v);
        assert.equal(pyDumps(parsePyJson(text)), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps keys named like Object.prototype members in place', () => {
    const text = '{"b": 1, "constructor": 2, "toString": {"valueOf": 3, "a": 4}, "a": 5}';
    assert.equal(pyDumps(parsePyJson(text)), text);
    assert.equal(
      pyDumps(
        ordered([
          ['hasOwnProperty', 1],
          ['a', 2],
        ]),
      ),
      '{"hasOwnProperty": 1, "a": 2}',
    );
  });

  it('parses numbers like the windowed reader, long ones included', () => {
    assert.equal(
      pyDumps(parsePyJson('[1.5e3, -0, 12345678901234567890, 2.50]')),
      '[1500.0, 0, 12345678901234567890, 2.5]',
    );
    const long = '9'.repeat(395);
    assert.equal(pyDumps(parsePyJson(`[${long}]`)), `[${long}]`);
    // The reader looks at 400 characters at most, as before: longer literals are cut there.
    assert.throws(() => parsePyJson(`[${'9'.repeat(450)}]`), /Expecting ',' delimiter/);
    assert.deepEqual(pyKeys(parsePyJson('{"2": 1, "1": 2, "2": 3}') as object), ['2', '1']);
    assert.equal(pyDumps(parsePyJson('{"2": 1, "1": 2, "2": 3}')), '{"2": 3, "1": 2}');
  });
});
