// After a restart the native facade reads back only its own prompts (the store's facade index),
// never the other jobs in the store: with thousands of v2 jobs beside them its start-up stays one
// short listing, and its prompts are in /history again.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type JobPage, type ListQuery, SqliteJobStore } from '../../src/jobs/index.ts';
import { jobRecord } from '../support/job-record.ts';
import { invertPrompt, startTestStack } from '../support/gateway.ts';

test('a restarted facade reads back its own prompts and not the other jobs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-facade-recover-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'jobs.sqlite');

  const first = await startTestStack({ store: new SqliteJobStore({ path }) });
  let promptId: string;
  try {
    const queued = await first.request('/prompt', { body: { prompt: invertPrompt('recover') } });
    assert.equal(queued.status, 200);
    promptId = queued.body.prompt_id;
    for (let i = 0; i < 200 && !(promptId in (await first.request(`/history/${promptId}`)).body); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    assert.ok(promptId in (await first.request(`/history/${promptId}`)).body, 'the prompt ran');
  } finally {
    await first.close();
  }

  // Thousands of newer jobs that did not come through the facade.
  const seed = new SqliteJobStore({ path });
  const now = Date.now();
  for (let i = 0; i < 3000; i++) {
    seed.insert(jobRecord(`other-${i}`, now + i, 'succeeded', { expires_at: now + 3_600_000 }));
  }
  await seed.durable();
  seed.close();

  const store = new SqliteJobStore({ path });
  let rowsListed = 0;
  const list = store.list.bind(store);
  store.list = (query: ListQuery): JobPage => {
    const page = list(query);
    rowsListed += page.jobs.length;
    return page;
  };
  const second = await startTestStack({ store });
  try {
    assert.ok(rowsListed <= 1, `start-up listed ${rowsListed} jobs`);
    const history = (await second.request('/history')).body;
    assert.ok(promptId in history, 'the prompt is in /history after the restart');
    assert.ok(!Object.keys(history).some((id) => id.startsWith('other-')), 'v2 jobs stay out of it');
  } finally {
    await second.close();
  }
});
