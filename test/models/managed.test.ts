// Managed ComfyUI processes read MODELS_DIR: the gateway writes an extra_model_paths.yaml and
// starts each process with --extra-model-paths-config, so a model it downloads appears in the
// process's loader choices (here `comfy-gateway simulate`, which reads the file's base_path).
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { type Gateway, startGateway } from '../../src/server/index.ts';
import { freePort } from '../pool/helpers.ts';
import { readEvents } from '../support/gateway.ts';
import { type ModelServer, startModelServer } from '../support/model-server.ts';
import { REPO_ROOT } from '../support/shared.ts';

let files: ModelServer;
let dataDir: string;
let gateway: Gateway;
let port: number;

before(async () => {
  files = await startModelServer(1024 * 1024);
  dataDir = await mkdtemp(join(tmpdir(), 'gw-managed-models-'));
  port = await freePort();
  const config = loadConfig({
    COMFYUI_COMMAND: `${process.execPath} ${join(REPO_ROOT, 'src/cli/main.ts')} simulate --port {port} --node-delay-ms 1`,
    COMFYUI_MANAGED_PORTS: String(port),
    MODELS_DIR: join(dataDir, 'models'),
    ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
    DATA_DIR: dataDir,
    JOB_STORE: 'memory',
    HEALTH_CHECK_INTERVAL_MS: '500',
  });
  gateway = await startGateway(Object.freeze({ ...config, port: 0, host: '127.0.0.1' }), {
    logger: pino({ level: 'silent' }),
  });
});
after(async () => {
  await gateway?.close();
  await files?.close();
  await rm(dataDir, { recursive: true, force: true });
});

test('a managed instance reads MODELS_DIR through the extra_model_paths file the gateway writes', async () => {
  const yaml = await readFile(join(dataDir, 'extra_model_paths.yaml'), 'utf8');
  assert.match(yaml, new RegExp(`base_path: ${join(dataDir, 'models')}`));
  assert.match(yaml, /checkpoints: checkpoints\//);
  const deadline = AbortSignal.timeout(30_000);
  while (gateway.pool.list()[0]?.state !== 'healthy') {
    if (deadline.aborted) assert.fail('the managed instance did not become healthy');
    await new Promise<void>((resolve) => gateway.pool.once('instance', () => resolve()));
  }
  const res = await fetch(`${gateway.url}/v1/models/downloads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: `${files.url}/managed.safetensors`, directory: 'checkpoints' }),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  let status = '';
  for await (const frame of readEvents(
    `${gateway.url}/v1/models/downloads/${id}/events`,
    AbortSignal.timeout(30_000),
  ))
    status = frame.data.status;
  assert.equal(status, 'completed');
  const info = (await (
    await fetch(`http://127.0.0.1:${port}/object_info/CheckpointLoaderSimple`)
  ).json()) as {
    CheckpointLoaderSimple: { input: { required: { ckpt_name: [string[]] } } };
  };
  assert.deepEqual(info.CheckpointLoaderSimple.input.required.ckpt_name[0], ['managed.safetensors']);
  const models = (await (await fetch(`${gateway.url}/v1/models`)).json()) as {
    folders: Record<string, Array<{ name: string; instances: string[] }>>;
  };
  assert.deepEqual(models.folders.checkpoints?.find((m) => m.name === 'managed.safetensors')?.instances, [
    `managed-${port}`,
  ]);
});
