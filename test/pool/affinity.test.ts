// ModelAffinity: scores by the fraction of requested models used recently, bounded by capacity.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelAffinity } from '../../src/pool/affinity.ts';

test('scores the fraction of requested models used recently', () => {
  const affinity = new ModelAffinity();
  assert.equal(affinity.score(['a']), 0);
  affinity.record(['a', 'b']);
  assert.equal(affinity.score(['a', 'b']), 1);
  assert.equal(affinity.score(['a', 'c']), 0.5);
  assert.equal(affinity.score([]), 0);
  assert.equal(affinity.score(undefined), 0);
});

test('keeps only the most recent models, refreshing ones used again', () => {
  const affinity = new ModelAffinity(3);
  affinity.record(['a', 'b', 'c']);
  affinity.record(['a']); // a is now the most recent
  affinity.record(['d']); // evicts b, the oldest
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((m) => affinity.score([m])),
    [1, 0, 1, 1],
  );
});
