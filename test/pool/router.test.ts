// Routing rule: least loaded per unit of weight, then affinity, then round-robin.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pickCandidate, type RouteCandidate } from '../../src/pool/router.ts';

const c = (order: number, load: number, weight = 1, affinity = 0): RouteCandidate => ({
  order,
  load,
  weight,
  affinity,
});

test('picks the least loaded candidate', () => {
  const picked = pickCandidate([c(0, 3), c(1, 1), c(2, 2)], -1, 3);
  assert.equal(picked?.order, 1);
});

test('divides load by weight', () => {
  // 3 jobs on weight 4 (0.75) is less loaded than 1 job on weight 1.
  const picked = pickCandidate([c(0, 1, 1), c(1, 3, 4)], -1, 2);
  assert.equal(picked?.order, 1);
});

test('breaks ties round-robin after the previous pick', () => {
  const all = [c(0, 0), c(1, 0), c(2, 0)];
  assert.equal(pickCandidate(all, -1, 3)?.order, 0);
  assert.equal(pickCandidate(all, 0, 3)?.order, 1);
  assert.equal(pickCandidate(all, 1, 3)?.order, 2);
  assert.equal(pickCandidate(all, 2, 3)?.order, 0);
});

test('prefers affinity among equally loaded instances but never over a less loaded one', () => {
  assert.equal(pickCandidate([c(0, 0), c(1, 0, 1, 1)], -1, 2)?.order, 1);
  assert.equal(pickCandidate([c(0, 0), c(1, 1, 1, 1)], -1, 2)?.order, 0);
  assert.equal(pickCandidate([c(0, 0, 1, 0.5), c(1, 0, 1, 1)], -1, 2)?.order, 1);
});

test('returns undefined when there is no candidate', () => {
  assert.equal(pickCandidate([], 0, 0), undefined);
});

test('spreads many equal picks evenly', () => {
  const counts = [0, 0, 0, 0];
  let last = -1;
  for (let i = 0; i < 400; i++) {
    const picked = pickCandidate([c(0, 0), c(1, 0), c(2, 0), c(3, 0)], last, 4)!;
    counts[picked.order]!++;
    last = picked.order;
  }
  assert.deepEqual(counts, [100, 100, 100, 100]);
});
