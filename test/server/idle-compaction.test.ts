// IdleCompaction (src/server/idle-compaction.ts): an idle event loop with a grown young generation
// gets one memory-reducing GC, no more often than its spacing allows; a loop that never counts as
// idle gets none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdleCompaction } from '../../src/server/idle-compaction.ts';

/** Allocates objects that survive a few scavenges, so V8 grows the young generation. */
function churn(): number {
  let kept: Array<{ n: number }> = [];
  let total = 0;
  for (let i = 0; i < 2_000_000; i++) {
    kept.push({ n: i });
    if (kept.length === 100_000) {
      total += kept.length;
      kept = [];
    }
  }
  return total + kept.length;
}

test('an idle loop compacts once per spacing, shrinking the young generation', async (t) => {
  churn();
  const compactions: Array<{ youngBytesBefore: number; youngBytesAfter: number }> = [];
  const compaction = new IdleCompaction({
    intervalMs: 20,
    youngBytes: 0,
    minSpacingMs: 60_000,
    onCompact: (info) => compactions.push(info),
  });
  t.after(() => compaction.close());
  const deadline = Date.now() + 10_000;
  while (compactions.length === 0 && Date.now() < deadline) await sleep(20);
  assert.equal(compactions.length, 1, 'compacted while idle');
  const [first] = compactions;
  assert.ok(first!.youngBytesAfter <= first!.youngBytesBefore, JSON.stringify(first));
  await sleep(200);
  assert.equal(compactions.length, 1, 'not again within the spacing');
  compaction.close();
  compaction.close();
});

test('a loop that never counts as idle is never compacted', async (t) => {
  churn();
  let compactions = 0;
  const compaction = new IdleCompaction({
    intervalMs: 20,
    idleUtilization: 0,
    youngBytes: 0,
    onCompact: () => compactions++,
  });
  t.after(() => compaction.close());
  await sleep(300);
  assert.equal(compactions, 0);
});
