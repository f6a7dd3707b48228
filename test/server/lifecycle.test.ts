import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  invertPrompt,
  readEvents,
  startTestStack,
  type TestStack,
  waitForStatus,
} from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ env: { MAX_QUEUE: '3', MAX_JOBS_PER_INSTANCE: '2' } });
});
after(async () => {
  await stack.close();
});

const sim = () => stack.sim.instances[0] as NonNullable<TestStack['sim']['instances'][0]>;

test('async submit then poll: queued → succeeded, listed newest first with cursor pagination', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await stack.request('/api/v2/jobs', {
      body: { workflow: invertPrompt(`page${i}`), metadata: { n: i } },
    });
    assert.equal(res.status, 201);
    assert.ok(['queued', 'running', 'succeeded'].includes(res.body.status));
    assert.deepEqual(res.body.metadata, { n: i });
    ids.push(res.body.id);
  }
  for (const id of ids) assert.equal(await waitForStatus(stack, id, ['succeeded']), 'succeeded');
  const first = await stack.request('/api/v2/jobs?limit=2&status=succeeded');
  assert.equal(first.body.jobs.length, 2);
  assert.equal(first.body.has_more, true);
  const second = await stack.request(
    `/api/v2/jobs?limit=2&status=succeeded&cursor=${first.body.next_cursor}`,
  );
  const seen = [...first.body.jobs, ...second.body.jobs].map((j: { id: string }) => j.id);
  assert.deepEqual(seen.slice(0, 3), [...ids].reverse());
  const wf = await stack.request(`/api/v2/jobs/${ids[0]}/workflow`);
  assert.equal(wf.body.format, 'api');
  assert.equal(wf.body.workflow['3'].inputs.filename_prefix, 'page0');
});

test('overrides are applied to the executed workflow', async () => {
  const res = await stack.request('/api/v2/jobs?wait=10', {
    body: { workflow: invertPrompt('orig'), overrides: { '3': { filename_prefix: 'overridden' } } },
  });
  assert.equal(res.body.status, 'succeeded');
  assert.match(res.body.outputs[0].name, /^overridden_/);
});

test('output content supports Range (206) and reports bad ranges', async () => {
  const res = await stack.request('/api/v2/jobs?wait=10', { body: { workflow: invertPrompt('range') } });
  const url = res.body.outputs[0].url;
  const full = Buffer.from(await (await fetch(url)).arrayBuffer());
  const part = await fetch(url, { headers: { range: 'bytes=0-3' } });
  assert.equal(part.status, 206);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), full.subarray(0, 4));
  assert.equal(part.headers.get('content-range'), `bytes 0-3/${full.length}`);
  const tail = await fetch(url, { headers: { range: 'bytes=-5' } });
  assert.equal(tail.status, 206);
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), full.subarray(full.length - 5));
  const beyond = await fetch(url, { headers: { range: `bytes=${full.length + 10}-` } });
  assert.equal(beyond.status, 416);
  assert.equal(((await beyond.json()) as { error: { code: string } }).error.code, 'range_not_satisfiable');
  const missing = await stack.request(`/api/v2/jobs/${res.body.id}/outputs/5/content`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'output_unavailable');
});

test('cancel a running job: canceling then canceled, prompt interrupted on its instance; cancel is idempotent', async () => {
  sim().setFaults({ hang: true });
  try {
    const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('hang') } });
    const id = created.body.id;
    await waitForStatus(stack, id, ['running']);
    const canceled = await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' });
    assert.equal(canceled.status, 200);
    assert.ok(['canceling', 'canceled'].includes(canceled.body.status), canceled.body.status);
    assert.equal(await waitForStatus(stack, id, ['canceled']), 'canceled');
    const again = await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' });
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'canceled');
    assert.equal(sim().stats.queueLength, 0, 'nothing left on the instance');
  } finally {
    sim().clearFaults();
  }
});

test('cancel queued jobs, both waiting in the gateway and waiting on the instance', async () => {
  sim().setFaults({ neverStart: true });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt(`q${i}`) } })).body.id);
    }
    // Two are dispatched (slots), one waits in the gateway's own queue.
    const third = await stack.request(`/api/v2/jobs/${ids[2]}`);
    assert.equal(third.body.status, 'queued');
    assert.equal(third.body.queue_position, 1);
    for (const id of ids) {
      const res = await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' });
      assert.equal(res.status, 200);
    }
    for (const id of ids) assert.equal(await waitForStatus(stack, id, ['canceled']), 'canceled');
    assert.equal(sim().stats.queueLength, 0, 'queued prompts were removed from the instance queue');
  } finally {
    sim().clearFaults();
  }
});

test('SSE watchers of a waiting job hear its queue_position move up', async () => {
  sim().setFaults({ neverStart: true });
  const ids: string[] = [];
  const controller = new AbortController();
  try {
    for (let i = 0; i < 4; i++) {
      ids.push(
        (await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt(`pos${i}`) } })).body.id,
      );
    }
    const positions: Array<number | null> = [];
    const watch = (async () => {
      for await (const f of readEvents(`${stack.url}/api/v2/jobs/${ids[3]}/events`, controller.signal)) {
        if (f.event !== 'status') continue;
        positions.push(f.data.queue_position);
        if (positions.length === 1) await stack.request(`/api/v2/jobs/${ids[2]}/cancel`, { method: 'POST' });
        if (f.data.queue_position === 1) return;
      }
    })();
    await Promise.race([
      watch,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no position update in 5 s')), 5000).unref(),
      ),
    ]);
    assert.deepEqual(positions, [2, 1]);
  } finally {
    controller.abort();
    for (const id of ids) await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' });
    for (const id of ids) await waitForStatus(stack, id, ['canceled']);
    sim().clearFaults();
  }
});

test('timeout_ms fails a hanging job with code timeout and interrupts it', async () => {
  sim().setFaults({ hang: true });
  try {
    const res = await stack.request('/api/v2/jobs?wait=10', {
      body: { workflow: invertPrompt('to'), timeout_ms: 300 },
    });
    assert.equal(res.body.status, 'failed');
    assert.equal(res.body.error.code, 'timeout');
    assert.equal(sim().stats.queueLength, 0);
  } finally {
    sim().clearFaults();
  }
});

test('backpressure: above MAX_QUEUE waiting jobs, 429 queue_full with Retry-After; the key is released', async () => {
  sim().setFaults({ neverStart: true });
  const ids: string[] = [];
  try {
    // 2 slots on the instance + MAX_QUEUE (3) waiting in the gateway.
    for (let i = 0; i < 5; i++) {
      const res = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt(`bp${i}`) } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
    const full = await stack.request('/api/v2/jobs', {
      body: { workflow: invertPrompt('bp-over') },
      headers: { 'idempotency-key': 'bp-key' },
    });
    assert.equal(full.status, 429);
    assert.equal(full.body.error.code, 'queue_full');
    assert.match(full.headers.get('retry-after') ?? '', /^\d+$/);
    // Free a slot in the gateway queue; the same key now goes through.
    await stack.request(`/api/v2/jobs/${ids[4]}/cancel`, { method: 'POST' });
    const retry = await stack.request('/api/v2/jobs', {
      body: { workflow: invertPrompt('bp-over') },
      headers: { 'idempotency-key': 'bp-key' },
    });
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    ids.push(retry.body.id);
  } finally {
    for (const id of ids) await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' });
    for (const id of ids) await waitForStatus(stack, id, ['canceled']);
    sim().clearFaults();
  }
});

test('Idempotency-Key is single use: a second request is 422 idempotency_key_reuse and never runs', async () => {
  const headers = { 'idempotency-key': 'once-only' };
  const first = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('idem') }, headers });
  assert.equal(first.status, 201);
  const second = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('idem') }, headers });
  assert.equal(second.status, 422);
  assert.equal(second.body.error.code, 'idempotency_key_reuse');
  // A validation failure does not claim a key.
  const bad = await stack.request('/api/v2/jobs', {
    body: { workflow: {} },
    headers: { 'idempotency-key': 'fresh' },
  });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.code, 'invalid_workflow');
  const good = await stack.request('/api/v2/jobs', {
    body: { workflow: invertPrompt('idem2') },
    headers: { 'idempotency-key': 'fresh' },
  });
  assert.equal(good.status, 201);
  await waitForStatus(stack, first.body.id, ['succeeded']);
  await waitForStatus(stack, good.body.id, ['succeeded']);
});

test('SSE: snapshot first, progress, outputs before the terminal status, then the stream ends', async () => {
  sim().setFaults({ nodeDelayMs: 150 });
  try {
    const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('sse') } });
    const frames = [];
    for await (const f of readEvents(
      `${stack.url}/api/v2/jobs/${created.body.id}/events`,
      AbortSignal.timeout(10_000),
    )) {
      frames.push(f);
    }
    const names = frames.map((f) => f.event).filter((e) => e !== 'comment');
    assert.equal(names[0], 'status');
    assert.ok(['queued', 'running'].includes(frames[0]?.data.status));
    assert.ok(names.includes('progress'), names.join(','));
    const last = frames.at(-1);
    assert.equal(last?.event, 'status');
    assert.equal(last?.data.status, 'succeeded');
    assert.equal(last?.data.outputs.length, 1);
    assert.ok(names.lastIndexOf('output') < names.length - 1 && names.includes('output'));
    const values = frames.filter((f) => f.event === 'progress').map((f) => f.data.value);
    assert.deepEqual(
      values,
      [...values].sort((a, b) => a - b),
      'progress never goes backwards',
    );
    // A late subscriber gets the terminal snapshot and the stream closes.
    const late = [];
    for await (const f of readEvents(
      `${stack.url}/api/v2/jobs/${created.body.id}/events`,
      AbortSignal.timeout(5000),
    )) {
      late.push(f.event);
    }
    assert.deepEqual(late, ['output', 'status']);
  } finally {
    sim().clearFaults();
  }
});
