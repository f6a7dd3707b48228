// Models for jobs, end to end on the simulator with a models folder shared with the gateway: a
// job naming a missing model whose source is known waits while the gateway downloads it, then
// runs (and the simulator's loaders list the file); without a known source it is refused at once.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Json, readEvents, startTestStack, type TestStack } from '../support/gateway.ts';
import { type ModelServer, startModelServer } from '../support/model-server.ts';

let files: ModelServer;
let stack: TestStack;
let modelsDir: string;

before(async () => {
  files = await startModelServer(4 * 1024 * 1024 + 5);
  modelsDir = await mkdtemp(join(tmpdir(), 'gw-provision-'));
  stack = await startTestStack({
    simModelsDir: modelsDir,
    env: { MODELS_DIR: modelsDir, ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1' },
  });
});
after(async () => {
  await stack?.close();
  await files?.close();
  await rm(modelsDir, { recursive: true, force: true });
});

/** A UI (editor) workflow: checkpoint → VAE decode of an empty latent → SaveImage. */
function uiWorkflow(ckpt: string, models?: unknown[]): Json {
  return {
    last_node_id: 4,
    last_link_id: 3,
    nodes: [
      {
        id: 1,
        type: 'CheckpointLoaderSimple',
        pos: [0, 0],
        size: [300, 100],
        flags: {},
        order: 0,
        mode: 0,
        inputs: [],
        outputs: [
          { name: 'MODEL', type: 'MODEL', links: null, slot_index: 0 },
          { name: 'CLIP', type: 'CLIP', links: null, slot_index: 1 },
          { name: 'VAE', type: 'VAE', links: [2], slot_index: 2 },
        ],
        properties: { 'Node name for S&R': 'CheckpointLoaderSimple', ...(models ? { models } : {}) },
        widgets_values: [ckpt],
      },
      {
        id: 2,
        type: 'EmptyLatentImage',
        pos: [0, 200],
        size: [300, 100],
        flags: {},
        order: 1,
        mode: 0,
        inputs: [],
        outputs: [{ name: 'LATENT', type: 'LATENT', links: [1], slot_index: 0 }],
        properties: {},
        widgets_values: [64, 64, 1],
      },
      {
        id: 3,
        type: 'VAEDecode',
        pos: [400, 0],
        size: [200, 50],
        flags: {},
        order: 2,
        mode: 0,
        inputs: [
          { name: 'samples', type: 'LATENT', link: 1 },
          { name: 'vae', type: 'VAE', link: 2 },
        ],
        outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [3], slot_index: 0 }],
        properties: {},
        widgets_values: [],
      },
      {
        id: 4,
        type: 'SaveImage',
        pos: [700, 0],
        size: [300, 300],
        flags: {},
        order: 3,
        mode: 0,
        inputs: [{ name: 'images', type: 'IMAGE', link: 3 }],
        outputs: [],
        properties: {},
        widgets_values: ['provisioned'],
      },
    ],
    links: [
      [1, 2, 0, 3, 0, 'LATENT'],
      [2, 1, 2, 3, 1, 'VAE'],
      [3, 3, 0, 4, 0, 'IMAGE'],
    ],
    groups: [],
    config: {},
    extra: {},
    version: 0.4,
  };
}

function apiWorkflow(ckpt: string): Json {
  return {
    '1': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    '2': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    '3': { class_type: 'VAEDecode', inputs: { samples: ['2', 0], vae: ['1', 2] } },
    '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'api' } },
  };
}

async function simChoices(): Promise<string[]> {
  const res = await fetch(`${stack.sim.instances[0]!.url}/object_info/CheckpointLoaderSimple`);
  const body = (await res.json()) as Json;
  return body.CheckpointLoaderSimple.input.required.ckpt_name[0];
}

/** Follows a job's SSE stream to its end; returns its frames. */
async function jobFrames(id: string): Promise<Array<{ event: string; data: Json }>> {
  const frames: Array<{ event: string; data: Json }> = [];
  for await (const frame of readEvents(
    `${stack.url}/api/v2/jobs/${id}/events`,
    AbortSignal.timeout(60_000),
  )) {
    frames.push(frame);
  }
  return frames;
}

test('a UI workflow naming a missing model with a URL: the job waits while the model is provisioned, then succeeds', async () => {
  assert.deepEqual(await simChoices(), []);
  const url = `${files.url}/hub/provisioned.safetensors?rate=${2 * 1024 * 1024}`;
  const res = await stack.request('/api/v2/jobs', {
    body: {
      workflow: uiWorkflow('provisioned.safetensors', [
        { name: 'provisioned.safetensors', url, directory: 'checkpoints' },
      ]),
    },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.status, 'queued');
  assert.equal(res.body.waiting_reason, 'provisioning_models');
  const frames = await jobFrames(res.body.id);
  const provisioning = frames.filter(
    (f) => f.event === 'progress' && String(f.data.message).startsWith('provisioning models'),
  );
  assert.ok(provisioning.length >= 1, `progress while provisioning: ${JSON.stringify(frames.slice(0, 4))}`);
  const last = frames.at(-1);
  assert.equal(last?.data.status, 'succeeded', JSON.stringify(last));
  assert.equal((await stat(join(modelsDir, 'checkpoints', 'provisioned.safetensors'))).size, files.size);
  assert.deepEqual(await simChoices(), ['provisioned.safetensors']);
  const job = await stack.request(`/api/v2/jobs/${res.body.id}`);
  assert.equal(job.body.status, 'succeeded');
  const downloads = await stack.request('/v1/models/downloads');
  assert.equal(
    downloads.body.downloads.filter(
      (d: Json) => d.filename === 'provisioned.safetensors' && d.status === 'completed',
    ).length,
    1,
  );
  const models = await stack.request('/v1/models');
  const entry = models.body.folders.checkpoints.find((m: Json) => m.name === 'provisioned.safetensors');
  assert.deepEqual(entry.instances, [stack.gateway.pool.list()[0]!.id]);
  assert.equal(entry.size, files.size);
  assert.match(entry.sha256, /^[0-9a-f]{64}$/);
});

test('a missing model without a known URL is refused at once with 422 model_missing listing it', async () => {
  const res = await stack.request('/api/v2/jobs', { body: { workflow: apiWorkflow('nowhere.safetensors') } });
  assert.equal(res.status, 422, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'model_missing');
  assert.deepEqual(res.body.error.details.missing, [
    {
      name: 'nowhere.safetensors',
      folder: 'checkpoints',
      url: null,
      node_id: '1',
      class_type: 'CheckpointLoaderSimple',
      input: 'ckpt_name',
    },
  ]);
  const list = await stack.request('/api/v2/jobs');
  assert.equal(list.body.jobs.filter((j: Json) => j.status !== 'succeeded').length, 0, 'no job was created');
});

test('the request `models` field and the stored source map are sources too; a name seen once resolves later', async () => {
  const url = `${files.url}/hub/from-request.safetensors`;
  const first = await stack.request('/api/v2/jobs?wait=60', {
    body: {
      workflow: apiWorkflow('from-request.safetensors'),
      models: [{ name: 'from-request.safetensors', url, directory: 'checkpoints' }],
    },
  });
  assert.equal(first.status, 201);
  assert.equal(first.body.status, 'succeeded', JSON.stringify(first.body.error));
  const sources = await stack.request('/v1/models/sources');
  assert.deepEqual(sources.body.sources['from-request.safetensors'], { url, directory: 'checkpoints' });

  const put = await stack.request('/v1/models/sources', {
    method: 'PUT',
    body: {
      sources: {
        ...sources.body.sources,
        'from-map.safetensors': { url: `${files.url}/hub/from-map.safetensors`, directory: 'checkpoints' },
      },
    },
  });
  assert.equal(put.status, 200);
  const second = await stack.request('/api/v2/jobs?wait=60', {
    body: { workflow: apiWorkflow('from-map.safetensors') },
  });
  assert.equal(second.status, 201);
  assert.equal(second.body.status, 'succeeded', JSON.stringify(second.body.error));
  assert.ok((await simChoices()).includes('from-map.safetensors'));

  const bad = await stack.request('/v1/models/sources', {
    method: 'PUT',
    body: { sources: { 'x.safetensors': { url: `${files.url}/x.safetensors`, directory: 'custom_nodes' } } },
  });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.code, 'unknown_model_folder');
});

test('a model whose download fails fails the waiting job with model_download_failed', async () => {
  const res = await stack.request('/api/v2/jobs?wait=60', {
    body: {
      workflow: apiWorkflow('broken.safetensors'),
      models: [
        {
          name: 'broken.safetensors',
          url: `${files.url}/broken.safetensors?status=404`,
          directory: 'checkpoints',
        },
      ],
    },
  });
  assert.equal(res.status, 201);
  assert.equal(res.body.status, 'failed');
  assert.equal(res.body.error.code, 'model_download_failed');
});
