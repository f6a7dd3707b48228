import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { invertPrompt, readEvents, startTestStack, type TestStack } from '../support/gateway.ts';
import { readJson, WORKFLOW_PAIRS_DIR } from '../support/shared.ts';

let stack: TestStack;
let modelsDir: string;
const KEY = 'test-key-123';
const auth = { authorization: `Bearer ${KEY}` };
before(async () => {
  // The LCM workflow below loads these models: the simulator's models folder has them, as an
  // instance that can run it would (the gateway refuses a model no instance lists: 422 model_missing).
  modelsDir = await mkdtemp(join(tmpdir(), 'gw-ops-models-'));
  await mkdir(join(modelsDir, 'checkpoints'));
  await mkdir(join(modelsDir, 'loras'));
  await writeFile(join(modelsDir, 'checkpoints', 'sd_xl_1.0.safetensors'), 'x');
  await writeFile(join(modelsDir, 'loras', 'lcm_lora_sdxl.safetensors'), 'x');
  stack = await startTestStack({ env: { API_KEYS: `${KEY},other` }, simModelsDir: modelsDir });
});
after(async () => {
  await stack.close();
  await rm(modelsDir, { recursive: true, force: true });
});

test('API keys: missing or wrong bearer is a 401 envelope; health and docs stay public', async () => {
  const missing = await stack.request('/api/v2/jobs');
  assert.equal(missing.status, 401);
  assert.equal(missing.body.error.code, 'unauthorized');
  assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
  const wrong = await stack.request('/api/v2/jobs', { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);
  const ok = await stack.request('/api/v2/jobs', { headers: auth });
  assert.equal(ok.status, 200);
  assert.equal((await stack.request('/health')).status, 200);
  assert.equal((await stack.request('/openapi.json')).status, 200);
});

test('request ids: a given X-Request-Id is echoed, otherwise one is minted', async () => {
  const given = await stack.request('/api/v2/jobs', { headers: { ...auth, 'x-request-id': 'req-42' } });
  assert.equal(given.headers.get('x-request-id'), 'req-42');
  const minted = await stack.request('/api/v2/jobs', { headers: auth });
  assert.match(minted.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('OpenAPI 3.1 documents the v2 routes from the zod schemas', async () => {
  const doc = (await stack.request('/openapi.json')).body;
  assert.equal(doc.openapi, '3.1.0');
  for (const path of [
    '/api/v2/jobs',
    '/api/v2/jobs/{id}',
    '/api/v2/jobs/{id}/events',
    '/api/v2/jobs/{id}/cancel',
    '/prompt_sync',
  ]) {
    assert.ok(doc.paths[path], `missing ${path}`);
  }
  const body = doc.paths['/api/v2/jobs'].post.requestBody.content['application/json'].schema;
  assert.deepEqual(body.required, ['workflow']);
  assert.equal(body.additionalProperties, false);
  assert.ok(body.properties.webhook_url && body.properties.timeout_ms);
  assert.ok(doc.paths['/api/v2/jobs'].post.responses['201']);
  const docs = await fetch(`${stack.url}/docs`, { redirect: 'manual' });
  assert.ok([200, 302].includes(docs.status));
});

test('UI-format workflows are converted with the instance object_info and run', async () => {
  const ui = readJson(join(WORKFLOW_PAIRS_DIR, 'core_lcm', 'ui.json'));
  const res = await stack.request('/api/v2/jobs?wait=20', { body: { workflow: ui }, headers: auth });
  assert.equal(res.status, 201, JSON.stringify(res.body).slice(0, 500));
  const wf = await stack.request(`/api/v2/jobs/${res.body.id}/workflow`, { headers: auth });
  const expected = readJson<Record<string, { class_type: string }>>(
    join(WORKFLOW_PAIRS_DIR, 'core_lcm', 'api.json'),
  );
  assert.deepEqual(
    Object.values(wf.body.workflow as Record<string, { class_type: string }>)
      .map((n) => n.class_type)
      .sort(),
    Object.values(expected)
      .map((n) => n.class_type)
      .sort(),
  );
  assert.equal(res.body.status, 'succeeded', JSON.stringify(res.body.error));
});

test('/metrics exposes job counts, histograms, in-flight and pool metrics', async () => {
  const run = await stack.request('/api/v2/jobs?wait=10', {
    body: { workflow: invertPrompt('metrics') },
    headers: auth,
  });
  assert.equal(run.body.status, 'succeeded');
  const res = await fetch(`${stack.url}/metrics`, { headers: auth });
  const text = await res.text();
  assert.match(text, /comfy_gateway_jobs\{status="succeeded"\} [1-9]/);
  assert.match(text, /comfy_gateway_job_duration_seconds_bucket/);
  assert.match(text, /comfy_gateway_job_queue_wait_seconds_count [1-9]/);
  assert.match(text, /comfy_gateway_jobs_in_flight 0/);
  assert.match(text, /comfy_gateway_instance/);
});

test('graceful shutdown: waiting sync requests get their job back, SSE streams end, close is idempotent', async () => {
  const local = await startTestStack();
  const sim = local.sim.instances[0] as NonNullable<TestStack['sim']['instances'][0]>;
  sim.setFaults({ hang: true });
  const sync = local.request('/prompt_sync', { body: { prompt: invertPrompt('shutdown') } });
  let id: string | undefined;
  while (!id) id = (await local.request('/api/v2/jobs?limit=1')).body.jobs[0]?.id;
  const frames: string[] = [];
  const stream = (async () => {
    for await (const f of readEvents(`${local.url}/api/v2/jobs/${id}/events`, AbortSignal.timeout(10_000))) {
      frames.push(f.event);
    }
  })();
  while (frames.length === 0) await new Promise((r) => setImmediate(r));
  const closing = local.gateway.close();
  const res = await sync;
  assert.equal(res.status, 503);
  assert.equal(res.body.prompt_id, id);
  assert.equal(res.body.error, 'not_finished');
  await stream;
  await Promise.all([closing, local.gateway.close()]);
  await local.close();
});
