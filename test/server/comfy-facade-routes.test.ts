// The ComfyUI routes clients call besides prompts: lists merged over the pool (/embeddings,
// /extensions, /models, /models/{folder}), /free to every instance, the log subscription, the jobs
// listing (/api/jobs) over facade prompts, and per-server routes forwarded to one instance.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { eventually, invertWorkflow, rawRequest } from '../facade-clients/helpers.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

const misc = JSON.parse(
  readFileSync(new URL('../fixtures/comfyui-transcripts/misc_endpoints.json', import.meta.url), 'utf8'),
);
const recorded = (path: string): Json => misc.events.find((e: Json) => e.request?.path === path)?.response;

describe('facade: merged, forwarded and listing routes', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2 });
  });
  after(async () => {
    await stack.close();
  });

  it('answers /embeddings, /extensions, /models and /models/{folder} like ComfyUI, merged over the pool', async () => {
    for (const prefix of ['', '/api']) {
      for (const path of ['/embeddings', '/extensions', '/models', '/models/checkpoints']) {
        const res = await rawRequest(`${stack.url}${prefix}${path}`);
        assert.equal(res.status, 200, path);
        assert.deepEqual(
          res.json,
          recorded(path).body_json,
          `${prefix}${path}: the union of equal lists is the list`,
        );
      }
      const unknown = await rawRequest(`${stack.url}${prefix}/models/unknown_folder`);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.text, '');
    }
    const withInstances = await rawRequest(`${stack.url}/models/checkpoints?instances=true`);
    assert.deepEqual(withInstances.json, []);
  });

  it('frees memory on every instance and acknowledges the log subscription', async () => {
    const free = await rawRequest(`${stack.url}/free`, {
      headers: { 'content-type': 'application/json' },
      body: '{"unload_models": true, "free_memory": true}',
    });
    assert.equal(free.status, 200);
    assert.equal(free.text, '');
    const sub = await rawRequest(`${stack.url}/internal/logs/subscribe`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: '{"clientId": "x", "enabled": true}',
    });
    assert.equal(sub.status, 200);
  });

  it('forwards per-server routes to one instance and passes its answer back', async () => {
    const first = stack.sim.instances[0]?.url as string;
    for (const path of ['/users', '/settings', '/userdata?dir=workflows', '/api/experiment/models']) {
      const direct = await rawRequest(`${first}${path}`);
      const through = await rawRequest(`${stack.url}${path}`);
      assert.equal(through.status, direct.status, path);
      assert.equal(through.text, direct.text, path);
    }
  });

  it('forwards every per-server prefix, its sub-paths and /api form, and nothing beside them', async () => {
    const first = stack.sim.instances[0]?.url as string;
    const forwarded = [
      '/v2/userdata?path=workflows',
      '/api/v2/userdata/workflows%2Fa.json',
      '/internal/folder_paths',
      '/api/internal/files/output',
      '/experiment/models/checkpoints',
      '/i18n',
      '/api/settings/Comfy.Theme',
      '/workflow_templates',
      '/api/global_subgraphs',
    ];
    for (const path of forwarded) {
      const direct = await rawRequest(`${first}${path}`);
      const through = await rawRequest(`${stack.url}${path}`);
      assert.equal(through.status, direct.status, path);
      assert.equal(through.text, direct.text, path);
    }
    // Neighbours of the prefixes are the gateway's own 404, not the instance's.
    for (const path of [
      '/internal/other',
      '/api/v2/userdatax',
      '/settingsx',
      '/experiment',
      '/api/internal',
    ]) {
      const res = await rawRequest(`${stack.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.match(res.text, /No route GET/, path);
    }
  });

  it('lists facade prompts at /api/jobs in ComfyUI shape, with its errors', async () => {
    const res = await rawRequest(`${stack.url}/prompt`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: invertWorkflow('jobs', 0x030303), client_id: 'jobs-client' }),
    });
    const id = res.json.prompt_id;
    await eventually(async () => (await rawRequest(`${stack.url}/history/${id}`)).json[id]);
    const list = await rawRequest(`${stack.url}/api/jobs?limit=2`);
    assert.equal(list.status, 200);
    const job = list.json.jobs.find((j: Json) => j.id === id);
    assert.equal(job.status, 'completed');
    assert.equal(job.outputs_count, 1);
    assert.equal(job.preview_output.nodeId, '3');
    assert.equal(job.preview_output.mediaType, 'images');
    assert.deepEqual(Object.keys(list.json.pagination), ['offset', 'limit', 'total', 'has_more']);
    const one = await rawRequest(`${stack.url}/api/jobs/${id}`);
    assert.equal(one.json.id, id);
    assert.equal(one.json.execution_status.status_str, 'success');
    assert.equal(one.json.workflow.prompt['3'].class_type, 'SaveImage');
    assert.deepEqual((await rawRequest(`${stack.url}/api/jobs/not-a-job`)).json, { error: 'Job not found' });
    const bogus = await rawRequest(`${stack.url}/api/jobs?status=bogus`);
    assert.equal(bogus.status, 400);
    assert.equal(
      bogus.json.error,
      'Invalid status value(s): bogus. Valid values: pending, in_progress, completed, failed',
    );
    assert.deepEqual((await rawRequest(`${stack.url}/api/jobs?limit=0`)).json, {
      error: 'limit must be a positive integer',
    });
  });
});
