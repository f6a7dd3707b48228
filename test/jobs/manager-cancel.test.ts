// Cancelling a job in each state it can be in: waiting, running on an instance, already finished.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakePool, PROMPT, settled, startManager } from '../support/fake-pool.ts';

test('canceling a queued job ends it canceled and it is never dispatched', { timeout: 10_000 }, async (t) => {
  const pool = new FakePool(['a'], 0);
  const { manager, store } = await startManager(pool);
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  await manager.durable();
  assert.equal(manager.get(job.id)?.status, 'queued');

  const canceled = manager.cancel(job.id);
  assert.equal(canceled.status, 'canceled');
  assert.equal(store.get(job.id)?.status, 'canceled');
  assert.equal(manager.cancel(job.id).status, 'canceled', 'a second cancel is harmless');

  // Capacity returns: only a job submitted after the cancel may run.
  const later = manager.submit({ workflow: PROMPT });
  pool.setSlots(1);
  const run = await pool.nextRun();
  assert.equal(run.promptId, later.id);
  assert.equal(pool.unclaimedRuns, 0);
  const after = manager.get(job.id);
  assert.equal(after?.status, 'canceled');
  assert.deepEqual(after?.attempts, [], 'no attempt was ever made');
  assert.equal(pool.clients.get('a')?.cancels.length, 0, 'nothing to cancel on the instance');
  run.succeed();
  await settled(manager, later.id);
});

test('canceling a running job aborts its run and cancels the prompt on its instance', {
  timeout: 10_000,
}, async (t) => {
  const pool = new FakePool(['a']);
  const { manager } = await startManager(pool);
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  const run = await pool.nextRun();
  run.emit({ type: 'started', promptId: job.id });
  assert.equal(manager.get(job.id)?.status, 'running');

  const canceling = manager.cancel(job.id);
  assert.equal(canceling.status, 'canceling', 'canceling until the instance lets go');
  assert.equal(run.signal.aborted, true, 'the run is aborted at once');

  const done = await settled(manager, job.id);
  assert.equal(done.status, 'canceled');
  assert.deepEqual(pool.clients.get('a')?.cancels, [job.id], 'the prompt is cancelled on its instance');
  assert.deepEqual(
    pool.releases,
    [{ instanceId: 'a', ok: true }],
    'a cancel is not held against the instance',
  );
  assert.equal(done.attempts.length, 1);
});

test('canceling a finished job changes nothing, however often', { timeout: 10_000 }, async (t) => {
  const pool = new FakePool(['a']);
  const { manager, store } = await startManager(pool);
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  const run = await pool.nextRun();
  run.succeed();
  const done = structuredClone(await settled(manager, job.id));
  assert.equal(done.status, 'succeeded');
  const writes = store.writes;

  for (let i = 0; i < 3; i++) assert.deepEqual(manager.cancel(job.id), done);
  assert.deepEqual(store.get(job.id), done, 'the stored record is untouched');
  assert.equal(store.writes, writes, 'nothing is written');
  assert.deepEqual(pool.clients.get('a')?.cancels, [], 'the instance is not asked to cancel');
});

test('canceling a failed job leaves it failed with its error', { timeout: 10_000 }, async (t) => {
  const pool = new FakePool(['a']);
  const { manager } = await startManager(pool);
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  const run = await pool.nextRun();
  run.fail(new Error('boom'));
  const failed = structuredClone(await settled(manager, job.id));
  assert.equal(failed.status, 'failed');
  assert.deepEqual(manager.cancel(job.id), failed);
  assert.deepEqual(manager.cancel(job.id), failed);
});
