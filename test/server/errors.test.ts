// One error base (src/errors.ts) and one renderer per API surface: every module's errors carry their
// code and HTTP status, the v2 handler renders them without knowing them, and the native facade
// renders the same errors in ComfyUI's shape.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as comfy from '../../src/comfy/index.ts';
import * as config from '../../src/config.ts';
import { GatewayError } from '../../src/errors.ts';
import * as fleet from '../../src/fleet/index.ts';
import * as io from '../../src/io/index.ts';
import * as jobs from '../../src/jobs/index.ts';
import * as models from '../../src/models/index.ts';
import * as pipelines from '../../src/pipelines/index.ts';
import * as pool from '../../src/pool/index.ts';
import { renderError } from '../../src/server/errors.ts';
import * as server from '../../src/server/index.ts';
import { RequestValidationError } from '../../src/server/zod.ts';
import * as webhooks from '../../src/webhooks/index.ts';
import * as workflow from '../../src/workflow/index.ts';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';

const MODULES = { comfy, config, fleet, io, jobs, models, pipelines, pool, server, webhooks, workflow };

test('every error class a module exports extends the one GatewayError', () => {
  const seen: string[] = [];
  for (const [module, exports] of Object.entries(MODULES)) {
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== 'function' || !(value.prototype instanceof Error)) continue;
      seen.push(`${module}.${name}`);
      assert.ok(value.prototype instanceof GatewayError, `${module}.${name} does not extend GatewayError`);
    }
  }
  // The check above ran over the real hierarchies, not over nothing.
  for (const name of [
    'comfy.ComfyError',
    'io.IoError',
    'pool.PoolError',
    'models.ModelsError',
    'config.ConfigError',
  ])
    assert.ok(seen.includes(name), `${name} not exported`);
});

test('the v2 renderer takes status, code and details from the error itself', () => {
  const cases: Array<[unknown, number, string]> = [
    [new pool.InstanceNotFoundError('a'), 404, 'instance_not_found'],
    [new pool.InstanceExistsError('a'), 409, 'instance_exists'],
    [new pool.InvalidInstanceConfigError('url', 'bad'), 422, 'invalid_instance_config'],
    [new pool.PoolClosedError(), 503, 'pool_closed'],
    [new io.AssetQuotaError(10, 9, 5), 507, 'asset_quota_exceeded'],
    [new io.UrlForbiddenError('no'), 422, 'input_url_forbidden'],
    [new models.DownloadConflictError('x.safetensors', 't1'), 409, 'download_conflict'],
    [new webhooks.WebhookUrlError('no'), 422, 'webhook_url_invalid'],
    [new workflow.WorkflowTooLargeError(9, 4), 422, 'workflow_too_large'],
    [new jobs.QueueFullError(3), 429, 'queue_full'],
    [new config.ConfigError('PORT', 'not a number'), 500, 'invalid_config'],
  ];
  for (const [err, status, code] of cases) {
    const rendered = renderError(err);
    assert.equal(rendered.status, status, code);
    assert.equal(rendered.code, code);
    assert.equal(rendered.message, (err as Error).message);
  }
  assert.deepEqual(renderError(new models.DownloadConflictError('x', 't1')).details, {
    target: 'x',
    task_id: 't1',
  });
  assert.deepEqual(renderError(new workflow.WorkflowTooLargeError(9, 4)).details, { nodes: 9, limit: 4 });
  assert.equal(renderError(new jobs.QueueFullError(3)).retryAfter, 3);
});

test('an instance failure renders as a generic 502 upstream_error whatever its code', () => {
  for (const err of [
    new comfy.ComfyTimeoutError('timed out after 5 s at http://10.0.0.7:8188'),
    new comfy.ComfyServerError('boom', 500, 'Traceback (most recent call last)…'),
    new comfy.ComfyConnectionError('ECONNREFUSED 10.0.0.7:8188'),
  ]) {
    assert.deepEqual(renderError(err), {
      status: 502,
      code: 'upstream_error',
      message: 'A ComfyUI instance failed to answer.',
      details: null,
    });
  }
  // The SDK's own `status` (what ComfyUI answered) stays apart from the gateway's answer.
  assert.equal(new comfy.ComfyServerError('x', 404, '').status, 404);
});

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(async () => {
  await stack.close();
});

test('the native facade renders a gateway error in ComfyUI shape with its own status and code', async () => {
  let deep = '1';
  for (let i = 0; i < 100; i++) deep = `[${deep}]`;
  const prompt = JSON.stringify(invertPrompt()).replace('"batch_size":1', `"batch_size":${deep}`);
  const res = await stack.request('/prompt', {
    body: `{"prompt": ${prompt}}`,
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.deepEqual(res.body, {
    error: {
      type: 'json_too_deep',
      message: 'The JSON body nests deeper than 64 levels.',
      details: '',
      extra_info: { max_depth: 64 },
    },
    node_errors: {},
  });
  // The same error on the v2 surface: the envelope.
  const v2 = await stack.request('/api/v2/jobs', {
    body: `{"workflow": ${prompt}}`,
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(v2.status, 400);
  assert.deepEqual(v2.body.error, {
    code: 'json_too_deep',
    message: 'The JSON body nests deeper than 64 levels.',
    details: { max_depth: 64 },
  });
});

test('a request that fails its schema is a GatewayError rendered as 400 invalid_request with the issues', async () => {
  const res = await stack.request('/api/v2/jobs', {
    body: { workflow: invertPrompt(), priority: 'high' },
  });
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, 'invalid_request');
  assert.ok(Array.isArray(res.body.error.details.issues) && res.body.error.details.issues.length > 0);
  assert.ok(RequestValidationError.prototype instanceof GatewayError);
});
