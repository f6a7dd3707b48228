import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import {
  canTransition,
  FACADE_METADATA_KEY,
  IdempotencyKeyReuseError,
  InvalidTransitionError,
  isTerminal,
  JOB_STATUSES,
  type JobStatus,
  type JobStore,
  MemoryJobStore,
  SqliteJobStore,
  transition,
} from '../../src/jobs/index.ts';
import { CHECKPOINT_EVERY_COMMITS, MAX_BATCH_WRITES } from '../../src/jobs/sqlite-store.ts';
import { jobRecord } from '../support/job-record.ts';

const job = (id: string, createdAt: number, status: JobStatus = 'queued') => jobRecord(id, createdAt, status);

describe('state machine', () => {
  test('terminal states never change; every allowed step is in the table', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...JOB_STATUSES), { maxLength: 12 }), (steps) => {
        const j = job('a', 0);
        for (const to of steps) {
          const from = j.status;
          if (canTransition(from, to)) {
            transition(j, to, 1, 10);
            assert.equal(j.status, to);
          } else if (from !== to) {
            assert.throws(() => transition(j, to, 1, 10), InvalidTransitionError);
            assert.equal(j.status, from);
          }
          if (isTerminal(from)) assert.equal(j.status, from);
        }
      }),
    );
  });

  test('a terminal transition stamps completion and restarts retention from the end', () => {
    const j = job('a', 0);
    transition(j, 'running', 5, 100);
    assert.equal(j.started_at, 5);
    transition(j, 'succeeded', 50, 100);
    assert.equal(j.completed_at, 50);
    assert.equal(j.expires_at, 150);
    assert.throws(() => transition(j, 'running', 60, 100), InvalidTransitionError);
  });
});

function storeContract(name: string, make: () => Promise<{ store: JobStore; cleanup: () => Promise<void> }>) {
  describe(name, () => {
    test('lists only the jobs whose request metadata has the key, newest first, by pages', async () => {
      const { store, cleanup } = await make();
      try {
        for (let i = 0; i < 40; i++) {
          const metadata =
            i % 10 === 0 ? { comfy_facade: { number: i } } : i % 10 === 1 ? { comfy_facade: null } : { n: i };
          store.insert({ ...job(`m${i}`, 1000 + i, 'succeeded'), request: { metadata } });
        }
        await store.durable();
        const first = store.list({ metadataKey: FACADE_METADATA_KEY, limit: 3 });
        assert.deepEqual(
          first.jobs.map((j) => j.id),
          ['m30', 'm20', 'm10'],
        );
        const rest = store.list({ metadataKey: FACADE_METADATA_KEY, limit: 3, cursor: first.nextCursor });
        assert.deepEqual(
          rest.jobs.map((j) => j.id),
          ['m0'],
        );
        assert.equal(rest.nextCursor, null);
      } finally {
        await cleanup();
      }
    });

    test('insert, get, update round-trip', async () => {
      const { store, cleanup } = await make();
      try {
        store.insert(job('a', 1));
        const got = store.get('a');
        assert.equal(got?.status, 'queued');
        assert.deepEqual(got?.workflow, job('a', 1).workflow);
        if (!got) return;
        got.status = 'running';
        store.update(got);
        assert.equal(store.get('a')?.status, 'running');
        assert.equal(store.get('missing'), undefined);
        await store.durable();
        assert.ok(store.writes >= 1);
        assert.equal(store.get('a')?.status, 'running');
      } finally {
        await cleanup();
      }
    });

    test('idempotency keys are single use, atomic with the insert, releasable', async () => {
      const { store, cleanup } = await make();
      try {
        store.insert(job('a', 1), 'k');
        assert.throws(() => store.insert(job('b', 2), 'k'), IdempotencyKeyReuseError);
        assert.equal(store.get('b'), undefined, 'a rejected insert leaves nothing behind');
        assert.equal(store.hasIdempotencyKey('k', 3), true);
        store.releaseIdempotencyKey('k');
        store.insert(job('c', 4), 'k');
        assert.equal(store.get('c')?.id, 'c');
      } finally {
        await cleanup();
      }
    });

    test('lists newest first with a cursor and a status filter', async () => {
      const { store, cleanup } = await make();
      try {
        for (let i = 0; i < 7; i++) store.insert(job(`j${i}`, 100 + i, i % 2 ? 'succeeded' : 'queued'));
        const p1 = store.list({ limit: 3 });
        assert.deepEqual(
          p1.jobs.map((j) => j.id),
          ['j6', 'j5', 'j4'],
        );
        const p2 = store.list({ limit: 3, cursor: p1.nextCursor });
        assert.deepEqual(
          p2.jobs.map((j) => j.id),
          ['j3', 'j2', 'j1'],
        );
        const p3 = store.list({ limit: 3, cursor: p2.nextCursor });
        assert.deepEqual(
          p3.jobs.map((j) => j.id),
          ['j0'],
        );
        assert.equal(p3.nextCursor, null);
        assert.deepEqual(
          store.list({ limit: 10, statuses: ['succeeded'] }).jobs.map((j) => j.id),
          ['j5', 'j3', 'j1'],
        );
        assert.deepEqual(
          store.listUnfinished().map((j) => j.id),
          ['j0', 'j2', 'j4', 'j6'],
        );
        for (const j of [...store.listUnfinished(), ...p1.jobs])
          assert.deepEqual(j.workflow, job('x', 0).workflow);
        assert.equal(store.counts().succeeded, 3);
      } finally {
        await cleanup();
      }
    });

    test('retention deletes only finished jobs past expires_at, and old keys', async () => {
      const { store, cleanup } = await make();
      try {
        store.insert(job('old', 1, 'succeeded'));
        store.insert(job('live', 1, 'running'));
        store.insert(job('new', 5000, 'failed'));
        assert.equal(store.deleteExpired(2000), 1);
        assert.equal(store.get('old'), undefined);
        assert.ok(store.get('live'));
        assert.ok(store.get('new'));
      } finally {
        await cleanup();
      }
    });
  });
}

storeContract('MemoryJobStore', async () => {
  const store = new MemoryJobStore();
  return { store, cleanup: async () => store.close() };
});

storeContract('SqliteJobStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-store-'));
  const store = new SqliteJobStore({ path: join(dir, 'jobs.sqlite') });
  return {
    store,
    cleanup: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

test('SqliteJobStore group-commits a burst of writes in one transaction; durable() waits for it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-store-'));
  const path = join(dir, 'jobs.sqlite');
  try {
    const a = new SqliteJobStore({ path });
    const jobs = Array.from({ length: 50 }, (_, i) => job(`g${i}`, i));
    for (const j of jobs) a.insert(j);
    for (const j of jobs) {
      j.status = 'running';
      a.update(j);
    }
    assert.equal(a.commits, 0, 'nothing is written synchronously');
    assert.equal(a.get('g5')?.status, 'running', 'reads see pending writes');
    await a.durable();
    assert.equal(a.commits, 1);
    assert.equal(a.writes, 50, 'an insert and its later update merge into one row write');
    const raw = new DatabaseSync(path);
    assert.equal(
      (raw.prepare("SELECT count(*) AS n FROM jobs WHERE status = 'running'").get() as { n: number }).n,
      50,
    );
    raw.close();
    a.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SqliteJobStore: a burst larger than MAX_BATCH_WRITES commits in bounded transactions, so no commit holds the event loop long', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-store-'));
  try {
    const store = new SqliteJobStore({ path: join(dir, 'jobs.sqlite') });
    const count = MAX_BATCH_WRITES * 4 + 10;
    for (let i = 0; i < count; i++) store.insert(job(`b${i}`, i));
    await store.durable();
    assert.equal(store.writes, count);
    assert.equal(
      store.commits,
      Math.ceil(count / MAX_BATCH_WRITES),
      'one commit per MAX_BATCH_WRITES writes',
    );
    assert.equal(store.list({ limit: count + 1 }).jobs.length, count);
    store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SqliteJobStore: WAL checkpoints run on a thread of their own and keep the WAL bounded; the last close removes it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-store-'));
  try {
    const path = join(dir, 'jobs.sqlite');
    const store = new SqliteJobStore({ path });
    const walBytes = () => statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    let maxWal = 0;
    // 40 rounds of CHECKPOINT_EVERY_COMMITS commits: the event loop's own automatic checkpoint is off,
    // so without the thread the WAL would only grow.
    for (let round = 0; round < 40; round++) {
      for (let c = 0; c < CHECKPOINT_EVERY_COMMITS; c++) {
        store.insert(job(`w${round}-${c}`, round * 1000 + c));
        await store.durable();
      }
      // Give the thread its turn, as a gateway's idle moments do.
      const before = store.checkpoints;
      for (let i = 0; i < 200 && store.checkpoints === before; i++) await sleep(5);
      maxWal = Math.max(maxWal, walBytes());
    }
    assert.ok(store.checkpoints >= 30, `checkpoints: ${store.checkpoints}`);
    assert.ok(maxWal < 3 * 2 ** 20, `WAL grew to ${maxWal} bytes`);
    assert.equal(store.list({ limit: 5000 }).jobs.length, 40 * CHECKPOINT_EVERY_COMMITS);
    store.close();
    // The thread's connection is closed before the store's: the store's close is the last one out,
    // which checkpoints and removes the WAL.
    assert.equal(walBytes(), 0);
    const reopened = new SqliteJobStore({ path });
    assert.equal(reopened.list({ limit: 5000 }).jobs.length, 40 * CHECKPOINT_EVERY_COMMITS);
    reopened.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SqliteJobStore: an update nobody awaits rides along with the next durable commit, or commits on its own within lazyCommitMs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-store-'));
  try {
    const store = new SqliteJobStore({ path: join(dir, 'jobs.sqlite'), lazyCommitMs: 50 });
    const first = job('first', 1);
    store.insert(first);
    await store.durable();
    assert.equal(store.commits, 1);
    first.status = 'succeeded';
    store.update(first);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(store.commits, 1, 'the update waits instead of committing alone');
    assert.equal(store.get('first')?.status, 'succeeded', 'reads see it meanwhile');
    store.insert(job('second', 2));
    await store.durable();
    assert.equal(store.commits, 2, 'one commit for the insert and the waiting update');
    assert.equal(store.writes, 3);
    const raw = new DatabaseSync(join(dir, 'jobs.sqlite'));
    const row = raw.prepare("SELECT status FROM jobs WHERE id = 'first'").get() as { status: string };
    assert.equal(row.status, 'succeeded');
    // Alone, it still commits once the window passes.
    first.status = 'expired';
    store.update(first);
    const deadline = Date.now() + 5000;
    while (store.commits < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(store.commits, 3);
    const after = raw.prepare("SELECT status FROM jobs WHERE id = 'first'").get() as { status: string };
    assert.equal(after.status, 'expired');
    raw.close();
    store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SqliteJobStore persists across reopen, uses WAL and records its schema version', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-store-'));
  const path = join(dir, 'jobs.sqlite');
  try {
    const a = new SqliteJobStore({ path });
    a.insert(job('keep', 1), 'key');
    a.close();
    a.close();
    const b = new SqliteJobStore({ path });
    assert.equal(b.get('keep')?.id, 'keep');
    assert.throws(() => b.insert(job('dup', 2), 'key'), IdempotencyKeyReuseError);
    b.close();
    const raw = new DatabaseSync(path);
    assert.equal((raw.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    assert.equal((raw.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 6);
    raw.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SqliteJobStore lists by workflow name through its index, newest first', () => {
  const store = new SqliteJobStore({ path: ':memory:' });
  try {
    for (let i = 0; i < 30; i++) {
      store.insert(
        jobRecord(`j${i}`, 1000 + i, 'queued', { request: { name: i % 3 === 0 ? 'invert' : 'resize' } }),
      );
    }
    const first = store.list({ name: 'invert', limit: 4 });
    assert.equal(first.jobs.length, 4);
    assert.ok(first.jobs.every((j) => j.request.name === 'invert'));
    assert.deepEqual(
      first.jobs.map((j) => j.created_at),
      [1027, 1024, 1021, 1018],
    );
    const rest = store.list({ name: 'invert', limit: 50, cursor: first.nextCursor });
    assert.equal(rest.jobs.length, 6);
    assert.equal(rest.nextCursor, null);
    assert.equal(store.list({ name: 'nothing', limit: 5 }).jobs.length, 0);
  } finally {
    store.close();
  }
});

test('SqliteJobStore finds the facade prompts through their own index, not by reading every job', () => {
  const store = new SqliteJobStore({ path: ':memory:' });
  try {
    assert.match(
      store.queryPlan({ metadataKey: FACADE_METADATA_KEY, limit: 200 }),
      /USING (COVERING )?INDEX jobs_facade\b/,
    );
  } finally {
    store.close();
  }
});
