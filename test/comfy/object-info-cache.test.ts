// ObjectInfoCache: identical /object_info answers parse to one shared object; distinct answers do
// not; an answer no client holds anymore leaves the cache (it is bounded by what is in use).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ObjectInfoCache } from '../../src/comfy/index.ts';

const answer = (extra: string) =>
  JSON.stringify({ EmptyImage: { input: { required: {} }, output: ['IMAGE'] }, [extra]: { input: {} } });

test('the same answer parses once and is shared; a different one is its own', () => {
  const cache = new ObjectInfoCache();
  const a = cache.parse(answer('A'));
  assert.equal(cache.parse(answer('A')), a);
  const b = cache.parse(answer('B'));
  assert.notEqual(b, a);
  assert.deepEqual(Object.keys(b), ['EmptyImage', 'B']);
  assert.equal(cache.parses, 2);
  assert.equal(cache.size, 2);
});

test('answers nobody holds are dropped', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const cache = new ObjectInfoCache();
  let held: unknown = cache.parse(answer('kept'));
  for (let i = 0; i < 50; i++) cache.parse(answer(`dropped-${i}`));
  assert.equal(cache.size, 51);
  for (let i = 0; i < 50 && cache.size > 1; i++) {
    gc();
    await sleep(10); // finalisation callbacks run on a later turn
  }
  assert.equal(cache.size, 1, 'only the answer still referenced stays');
  assert.equal(cache.parse(answer('kept')), held);
  held = null;
});
