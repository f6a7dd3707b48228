// Who hears a job's queue positions: streams do; callers that only wait for its end (`?wait`,
// /prompt_sync) do not, so the positions refreshed every second are not built for thousands of jobs
// that are only waited for; the all-jobs channel (the dashboard) still gets them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobEvents, type JobEvent } from '../../src/jobs/index.ts';
import { FakePool, PROMPT, settled, startManager } from '../support/fake-pool.ts';

test('only subscribers that do not just wait for the end, or the all-jobs channel, hear queue positions', () => {
  const events = new JobEvents();
  const offA = events.subscribe('j1', () => {}, undefined, { endOnly: true });
  const offB = events.subscribe('j1', () => {}, undefined, { endOnly: true });
  assert.equal(events.listenerCount('j1'), 2);
  assert.equal(events.hearsPositions('j1'), false);
  offA();
  offA();
  assert.equal(events.hearsPositions('j1'), false, 'a second off does not count the other waiter out');
  const stream = events.subscribe('j1', () => {});
  assert.equal(events.hearsPositions('j1'), true);
  stream();
  const dashboard = new AbortController();
  events.subscribeAll(() => {}, dashboard.signal);
  assert.equal(events.hearsPositions('j1'), true, 'the dashboard hears a waited job');
  dashboard.abort();
  assert.equal(events.hearsPositions('j1'), false);
  offB();
  assert.equal(events.listenerCount('j1'), 0);
  const aborted = AbortSignal.abort();
  events.subscribe('j2', () => {}, aborted, { endOnly: true })();
  events.subscribe('j2', () => {}, undefined, { endOnly: true });
  assert.equal(events.hearsPositions('j2'), false);
  assert.equal(events.listenerCount('j2'), 1);
});

test('the jobs queue positions go to are the streamed ones, unless every job may be heard', () => {
  const events = new JobEvents();
  events.subscribe('waited', () => {}, undefined, { endOnly: true });
  const off = events.subscribe('streamed', () => {});
  events.subscribe('streamed', () => {});
  assert.deepEqual([...(events.positionListeners() ?? [])], ['streamed']);
  off();
  assert.deepEqual([...(events.positionListeners() ?? [])], ['streamed'], 'one stream is left');
  const dashboard = new AbortController();
  events.subscribeAll(() => {}, dashboard.signal);
  assert.equal(events.positionListeners(), null, 'with the all-jobs channel: every waiting job is asked');
  dashboard.abort();
  class Everywhere extends JobEvents {
    override listenerCount(jobId: string): number {
      return super.listenerCount(jobId) + 1;
    }
  }
  assert.equal(new Everywhere().positionListeners(), null, 'listeners beyond this process: every job');
});

test('queue positions go to streamed jobs and, with a dashboard connected, to waited ones; waiters still get the end', {
  timeout: 20_000,
}, async (t) => {
  const pool = new FakePool(['a']);
  const { manager } = await startManager(pool);
  t.after(() => manager.close());
  const running = manager.submit({ workflow: PROMPT });
  const first = await pool.nextRun();
  const waited = manager.submit({ workflow: PROMPT });
  const streamed = manager.submit({ workflow: PROMPT });
  const emitted: Array<[string, JobEvent]> = [];
  const emit = manager.events.emit.bind(manager.events);
  manager.events.emit = (jobId, event) => {
    emitted.push([jobId, event]);
    emit(jobId, event);
  };
  const positions = (id: string) =>
    emitted.filter(([jobId, e]) => jobId === id && e.type === 'status' && e.data.queue_position != null);
  const scope = new AbortController();
  const wait = manager.waitForTerminal(waited.id, scope.signal);
  const stream = manager.events.subscribe(streamed.id, () => {});
  // The streamed job hears its position at the next refresh; the job only waited for does not.
  while (positions(streamed.id).length === 0) await new Promise((r) => setTimeout(r, 50));
  assert.equal(positions(waited.id).length, 0, JSON.stringify(positions(waited.id)));

  const dashboard = new AbortController();
  const heard = new Promise<number | null | undefined>((resolve) => {
    manager.events.subscribeAll((jobId, e) => {
      if (jobId === waited.id && e.type === 'status') resolve(e.data.queue_position);
    }, dashboard.signal);
  });
  assert.equal(await heard, 1, "the dashboard's channel hears the waited job's position");
  dashboard.abort();
  stream();

  first.succeed();
  const next = await pool.nextRun();
  next.succeed();
  assert.equal((await wait).status, 'succeeded');
  assert.equal(manager.events.listenerCount(waited.id), 0);
  scope.abort();
  const last = await pool.nextRun();
  last.succeed();
  assert.equal((await settled(manager, streamed.id)).status, 'succeeded');
  assert.equal((await settled(manager, running.id)).status, 'succeeded');
});
