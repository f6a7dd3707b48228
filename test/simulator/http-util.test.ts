// requestUrl's plain-path fast path answers what the WHATWG URL parser would (pathname and query).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { requestUrl } from '../../src/simulator/http-util.ts';

const same = (target: string) => {
  let ref: URL;
  try {
    ref = new URL(target, 'http://x');
  } catch (err) {
    assert.throws(() => requestUrl(target), { name: (err as Error).name }, target);
    return;
  }
  const fast = requestUrl(target);
  assert.equal(fast.pathname, ref.pathname, target);
  assert.equal(fast.searchParams.toString(), ref.searchParams.toString(), target);
};

describe('requestUrl', () => {
  it('matches new URL(target, base) on request targets', () => {
    for (const t of [
      '/',
      '/prompt',
      '/api/prompt',
      '/history/ab-12_x',
      '//x/y',
      '/a/../b',
      '/./a',
      '/%41',
      '/a?b=1',
      '/a b',
      '/é',
      '/a\\b',
      '/a//b',
      '/a/',
    ])
      same(t);
    fc.assert(
      fc.property(fc.stringMatching(/^\/[\w\-/.%?=&#\\ é]{0,12}$/), (t) => same(t)),
      { numRuns: 5000 },
    );
  });
});
