// JobManager's state machine on the happy path, driven through a scripted pool (test/support/fake-pool.ts).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { FakePool, PROMPT, settled, startManager } from '../support/fake-pool.ts';

test('a job goes queued → running → succeeded with one attempt recorded', { timeout: 10_000 }, async (t) => {
  const pool = new FakePool(['a']);
  const { manager, store } = await startManager(pool);
  t.after(() => manager.close());

  const job = manager.submit({ workflow: PROMPT });
  assert.equal(job.status, 'queued');
  assert.deepEqual(job.attempts, []);

  const run = await pool.nextRun();
  assert.equal(run.mode, 'run');
  assert.equal(run.promptId, job.id, 'the prompt goes out under the job id');
  assert.equal(run.instanceId, 'a');
  assert.equal(manager.get(job.id)?.status, 'queued', 'dispatched but not yet executing');
  assert.equal(manager.get(job.id)?.instance_id, 'a');

  const started = once(manager, 'started');
  run.emit({ type: 'started', promptId: job.id });
  await started;
  assert.equal(manager.get(job.id)?.status, 'running');
  assert.equal(store.get(job.id)?.status, 'running', 'running is persisted');

  run.succeed();
  const done = await settled(manager, job.id);
  assert.equal(done.status, 'succeeded');
  assert.equal(done.error, null);
  assert.equal(done.outputs.length, 1);
  assert.equal(done.attempts.length, 1);
  const [attempt] = done.attempts;
  assert.equal(attempt?.instance_id, 'a');
  assert.equal(attempt?.error, null);
  assert.ok(attempt?.finished_at, 'the attempt is closed');
  assert.ok(done.completed_at && done.started_at && done.completed_at >= done.started_at);
  assert.equal(store.get(job.id)?.status, 'succeeded', 'the terminal state is persisted');
  assert.deepEqual(pool.releases, [{ instanceId: 'a', ok: true }], 'the slot goes back once, as a success');
});

test('jobs wait while every slot is taken and run as slots free up', { timeout: 10_000 }, async (t) => {
  const pool = new FakePool(['a']);
  const { manager } = await startManager(pool);
  t.after(() => manager.close());

  const first = manager.submit({ workflow: PROMPT });
  const second = manager.submit({ workflow: PROMPT });
  const run1 = await pool.nextRun();
  assert.equal(run1.promptId, first.id);
  assert.equal(manager.get(second.id)?.status, 'queued');
  assert.equal(manager.queuePosition(second.id), 1);
  assert.equal(pool.unclaimedRuns, 0, 'the single slot holds one job');

  run1.succeed();
  const run2 = await pool.nextRun();
  assert.equal(run2.promptId, second.id);
  run2.succeed();
  assert.equal((await settled(manager, second.id)).status, 'succeeded');
  assert.equal((await settled(manager, first.id)).status, 'succeeded');
});
