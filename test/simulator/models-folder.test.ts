// The simulator's models folder: files appear in /models/<folder> and the loaders' /object_info
// choices as soon as they are written (no restart), and loader inputs are validated against them.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';

let sim: Simulator;
let modelsDir: string;
let url: string;

before(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'sim-models-'));
  sim = await startSimulator({ port: 0, modelsDir });
  url = sim.instances[0]!.url;
});
after(async () => {
  await sim?.close();
  await rm(modelsDir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: test reads JSON freely
async function get(path: string): Promise<any> {
  const res = await fetch(url + path);
  assert.equal(res.status, 200, path);
  return res.json();
}

function prompt(ckpt: string) {
  return {
    prompt: {
      '1': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
      '2': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
      '3': { class_type: 'VAEDecode', inputs: { samples: ['2', 0], vae: ['1', 2] } },
      '4': { class_type: 'PreviewImage', inputs: { images: ['3', 0] } },
    },
  };
}

test('a file written into the models folder is listed by /models/<folder> and the loaders, without a restart', async () => {
  assert.deepEqual(await get('/models/checkpoints'), []);
  const before = await get('/object_info/CheckpointLoaderSimple');
  assert.deepEqual(before.CheckpointLoaderSimple.input.required.ckpt_name[0], []);

  await mkdir(join(modelsDir, 'checkpoints', 'sdxl'), { recursive: true });
  await writeFile(join(modelsDir, 'checkpoints', 'b.safetensors'), 'x');
  await writeFile(join(modelsDir, 'checkpoints', 'sdxl', 'a.ckpt'), 'x');
  await writeFile(join(modelsDir, 'checkpoints', 'notes.txt'), 'x');
  await writeFile(join(modelsDir, 'checkpoints', 'c.safetensors.123.part'), 'x');
  await mkdir(join(modelsDir, 'upscale_models'), { recursive: true });
  await writeFile(join(modelsDir, 'upscale_models', '4x.pth'), 'x');

  assert.deepEqual(await get('/models/checkpoints'), ['b.safetensors', 'sdxl/a.ckpt']);
  assert.deepEqual(await get('/api/models/upscale_models'), ['4x.pth']);
  const one = await get('/object_info/CheckpointLoaderSimple');
  assert.deepEqual(one.CheckpointLoaderSimple.input.required.ckpt_name[0], ['b.safetensors', 'sdxl/a.ckpt']);
  const all = await get('/object_info');
  assert.deepEqual(all.CheckpointLoaderSimple.input.required.ckpt_name[0], ['b.safetensors', 'sdxl/a.ckpt']);
  assert.deepEqual(all.UpscaleModelLoader.input.required.model_name[1].options, ['4x.pth']);
  assert.deepEqual(all.LoraLoader.input.required.lora_name[0], []);
});

test('a loader naming a file that is not in the folder fails validation like ComfyUI', async () => {
  const missing = await fetch(`${url}/prompt`, {
    method: 'POST',
    body: JSON.stringify(prompt('nope.safetensors')),
  });
  assert.equal(missing.status, 400);
  const body = (await missing.json()) as { node_errors: Record<string, { errors: Array<{ type: string }> }> };
  assert.equal(body.node_errors['1']?.errors[0]?.type, 'value_not_in_list');
  const present = await fetch(`${url}/prompt`, {
    method: 'POST',
    body: JSON.stringify(prompt('b.safetensors')),
  });
  assert.equal(present.status, 200, await present.text());
});
