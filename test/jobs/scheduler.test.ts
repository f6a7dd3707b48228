// Scheduler positions: found by binary search over the ordered queue (a waiting job's 1-based place
// is read on every render of a queued job, with 10,000 of them waiting), they must agree with the
// dispatch order through priorities, same-millisecond arrivals, removals and dispatches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type QueueEntry, Scheduler } from '../../src/jobs/index.ts';
import { FakePool } from '../support/fake-pool.ts';

test('positions agree with the dispatch order through priorities, ties, removals and dispatches', async () => {
  const pool = new FakePool(['a'], 0);
  const dispatched: string[] = [];
  const scheduler = new Scheduler({
    pool,
    dispatch: (entry, lease) => {
      dispatched.push(entry.id);
      lease.release({ ok: true });
    },
  });
  try {
    const entry = (i: number): QueueEntry => ({
      id: `j${i}`,
      priority: [0, 5, -1][i % 3] as number,
      createdAt: 1000 + Math.floor(i / 10), // ten arrivals per millisecond
      classTypes: ['X'],
      exclude: [],
    });
    for (let i = 0; i < 2000; i++) scheduler.enqueue(entry(i));
    scheduler.start();
    const agree = () => {
      const order = scheduler.waitingIds();
      assert.equal(order.length, scheduler.size);
      order.forEach((id, i) => {
        assert.equal(scheduler.position(id), i + 1, id);
      });
      return order;
    };
    const order = agree();
    assert.deepEqual(order.slice(0, 3), ['j1', 'j4', 'j7'], 'priority first, then arrival');
    for (let i = 0; i < 2000; i += 7) assert.equal(scheduler.remove(`j${i}`), true);
    assert.equal(scheduler.position('j0'), null);
    assert.equal(scheduler.remove('j0'), false);
    const left = agree();
    // One slot: the pump hands out the head each time the lease comes back.
    pool.setSlots(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(dispatched, left.slice(0, dispatched.length));
    assert.ok(dispatched.length > 0);
    agree();
  } finally {
    scheduler.close();
  }
});
