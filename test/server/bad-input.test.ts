import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, readEvents, startTestStack, type TestStack } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ env: { MAX_BODY_BYTES: '65536', MAX_SSE_STREAMS: '1' } });
});
after(async () => {
  await stack.close();
});

function assertEnvelope(
  res: { status: number; body: { error?: { code?: string; message?: string } } },
  status: number,
  code: string,
) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error?.message, 'string');
  assert.ok((res.body.error?.message ?? '').length > 0);
}

test('malformed JSON is a 400 invalid_request envelope', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: '{"workflow": ',
    headers: { 'content-type': 'application/json' },
  });
  assertEnvelope(res, 400, 'invalid_request');
});

test('an empty JSON body is a 400', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: '',
    headers: { 'content-type': 'application/json' },
  });
  assertEnvelope(res, 400, 'invalid_request');
});

test('a non-JSON content type is a 415', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: 'workflow=1',
    headers: { 'content-type': 'text/plain' },
  });
  assertEnvelope(res, 415, 'unsupported_media_type');
});

test('wrong types name the field', async () => {
  const res = await stack.request('/api/v2/jobs', { body: { workflow: 'nope' } });
  assertEnvelope(res, 400, 'invalid_request');
  assert.match(res.body.error.message, /body\.workflow/);
  const priority = await stack.request('/api/v2/jobs', {
    body: { workflow: invertPrompt(), priority: 'high' },
  });
  assertEnvelope(priority, 400, 'invalid_request');
  assert.match(priority.body.error.message, /priority/);
});

test('unknown top-level fields are rejected (strict body)', async () => {
  const res = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt(), colour: 'blue' } });
  assertEnvelope(res, 400, 'invalid_request');
  assert.match(res.body.error.message, /colour/);
});

test('extra_data is closed: only api_key_comfy_org', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: { workflow: invertPrompt(), extra_data: { client_id: 'x' } },
  });
  assertEnvelope(res, 400, 'invalid_request');
});

test('a body over MAX_BODY_BYTES is a 413 payload_too_large', async () => {
  const big = { workflow: invertPrompt(), metadata: 'x'.repeat(70_000) };
  const res = await stack.request('/api/v2/jobs', { body: big });
  assertEnvelope(res, 413, 'payload_too_large');
});

test('an empty workflow is a 422 invalid_workflow', async () => {
  const res = await stack.request('/api/v2/jobs', { body: { workflow: {} } });
  assertEnvelope(res, 422, 'invalid_workflow');
});

test('a node without class_type is a 422 with per-node details', async () => {
  const res = await stack.request('/api/v2/jobs', { body: { workflow: { '1': { inputs: {} } } } });
  assertEnvelope(res, 422, 'invalid_workflow');
  assert.deepEqual(Object.keys(res.body.error.details.node_errors), ['1']);
});

test('a link to a missing node is a 422', async () => {
  const wf = invertPrompt();
  wf['2'] = { class_type: 'ImageInvert', inputs: { image: ['99', 0] } };
  const res = await stack.request('/api/v2/jobs', { body: { workflow: wf } });
  assertEnvelope(res, 422, 'invalid_workflow');
  assert.match(JSON.stringify(res.body.error.details), /99/);
});

test('unknown node classes are a 422 naming them, and no job is created', async () => {
  const before = await stack.request('/api/v2/jobs?limit=100');
  const wf = { ...invertPrompt(), '9': { class_type: 'NoSuchNode', inputs: {} } };
  const res = await stack.request('/api/v2/jobs', { body: { workflow: wf } });
  assertEnvelope(res, 422, 'invalid_workflow');
  assert.deepEqual(res.body.error.details.missing_node_classes, ['NoSuchNode']);
  const afterList = await stack.request('/api/v2/jobs?limit=100');
  assert.equal(afterList.body.jobs.length, before.body.jobs.length);
});

test('overrides naming a missing node are a 422', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: { workflow: invertPrompt(), overrides: { '42': { x: 1 } } },
  });
  assertEnvelope(res, 422, 'invalid_workflow');
});

test('an unknown job id is a 404 not_found, on every job route', async () => {
  const id = '00000000-0000-4000-8000-000000000000';
  assertEnvelope(await stack.request(`/api/v2/jobs/${id}`), 404, 'not_found');
  assertEnvelope(await stack.request(`/api/v2/jobs/${id}/workflow`), 404, 'not_found');
  assertEnvelope(await stack.request(`/api/v2/jobs/${id}/cancel`, { method: 'POST' }), 404, 'not_found');
  assertEnvelope(await stack.request(`/api/v2/jobs/${id}/events`), 404, 'not_found');
  assertEnvelope(await stack.request(`/api/v2/jobs/${id}/outputs/0/content`), 404, 'not_found');
});

test('an unknown route is a 404 envelope', async () => {
  assertEnvelope(await stack.request('/api/v2/nothing-here'), 404, 'not_found');
});

test('bad list queries are 400s', async () => {
  assertEnvelope(await stack.request('/api/v2/jobs?status=done'), 400, 'invalid_request');
  assertEnvelope(await stack.request('/api/v2/jobs?limit=0'), 400, 'invalid_request');
  assertEnvelope(await stack.request('/api/v2/jobs?limit=abc'), 400, 'invalid_request');
  assertEnvelope(await stack.request('/api/v2/jobs?cursor=garbage'), 400, 'invalid_request');
});

test('an over-long Idempotency-Key is a 400', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: { workflow: invertPrompt() },
    headers: { 'idempotency-key': 'k'.repeat(256) },
  });
  assertEnvelope(res, 400, 'invalid_request');
});

test('ComfyUI validation errors fail the job with node_errors unchanged', async () => {
  // A file only the instance can check (custom validation): the gateway cannot refuse it at
  // submit (certain rejections are 422 there, see submit-validation.test.ts), ComfyUI does.
  const wf = {
    '1': { class_type: 'LoadImage', inputs: { image: 'never-uploaded.png' } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'val' } },
  };
  const res = await stack.request('/api/v2/jobs?wait=10', { body: { workflow: wf } });
  assert.equal(res.status, 201);
  assert.equal(res.body.status, 'failed');
  assert.equal(res.body.error.code, 'invalid_workflow');
  const nodeErrors = res.body.error.details.node_errors;
  assert.equal(nodeErrors['1'].class_type, 'LoadImage');
  assert.equal(nodeErrors['1'].errors[0].type, 'custom_validation_failed');
  assert.equal(res.body.attempts.length, 1, 'validation errors are not retried');
});

test('an execution error fails the job with node id, class and message', async () => {
  stack.sim.instances[0]?.setFaults({ failAtNode: '2' });
  try {
    const res = await stack.request('/api/v2/jobs?wait=10', { body: { workflow: invertPrompt('exec') } });
    assert.equal(res.body.status, 'failed', JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'node_execution_error');
    assert.equal(res.body.error.node_id, '2');
    assert.equal(res.body.error.class_type, 'ImageInvert');
    assert.equal(res.body.attempts.length, 1, 'execution errors are not retried');
  } finally {
    stack.sim.instances[0]?.clearFaults();
  }
});

test('a __proto__ key in the body is rejected, not merged', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: `{"workflow": {"__proto__": {"class_type": "X", "inputs": {}}}}`,
    headers: { 'content-type': 'application/json' },
  });
  assertEnvelope(res, 400, 'invalid_request');
});

test('beyond MAX_SSE_STREAMS, /events is a 429 too_many_streams with Retry-After', async () => {
  const sim = stack.sim.instances[0];
  sim?.setFaults({ hang: true });
  const controller = new AbortController();
  try {
    const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('streams') } });
    const url = `${stack.url}/api/v2/jobs/${created.body.id}/events`;
    const first = readEvents(url, controller.signal);
    assert.equal((await first.next()).value?.event, 'status');
    const second = await stack.request(`/api/v2/jobs/${created.body.id}/events`);
    assertEnvelope(second, 429, 'too_many_streams');
    assert.equal(second.headers.get('retry-after'), '5');
    controller.abort();
    await first.return(undefined).catch(() => {});
    await stack.request(`/api/v2/jobs/${created.body.id}/cancel`, { method: 'POST' });
  } finally {
    controller.abort();
    sim?.clearFaults();
  }
});
