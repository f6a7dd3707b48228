// comfyui-node (`@saintno/comfyui-sdk`, installed as is) against the facade over two simulated
// instances: CallWrapper runs, two concurrent runs on one client, ComfyPool, uploadImage + LoadImage,
// freeMemory. Every run must finish with the right image, and no request of the client may be
// answered 4xx/5xx (the client's fetch calls are watched).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CallWrapper, ComfyApi, PromptBuilder } from '@saintno/comfyui-sdk';
import { PNG } from 'pngjs';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { assertPng, inverted, watchFetch } from './helpers.ts';
import { builder, run, type SdkImage, withMeta } from './saintno.ts';

describe('@saintno/comfyui-sdk (comfyui-node) against the facade', () => {
  let stack: TestStack;
  const apis: ComfyApi[] = [];
  /** Every facade request the clients made that got a 4xx/5xx, as `METHOD path status`. */
  const failures: string[] = [];
  let unwatch = () => {};

  before(async () => {
    stack = await startTestStack({ instances: 2, nodeDelayMs: 20 });
    unwatch = watchFetch(stack.url, failures);
  });
  after(async () => {
    unwatch();
    for (const api of apis) api.destroy();
    await stack.close();
  });

  async function connect(clientId: string): Promise<ComfyApi> {
    const api = new ComfyApi(stack.url, clientId);
    apis.push(api);
    await api.init(3, 100).waitForReady();
    return api;
  }

  async function fetchImage(api: ComfyApi, image: SdkImage) {
    const res = await fetch(api.getPathImage(image));
    assert.equal(res.status, 200);
    return Buffer.from(await res.arrayBuffer());
  }

  it('runs a workflow with CallWrapper and the image has the right pixels', async () => {
    const api = await connect('sdk-one');
    const out = await run(api, builder('sdk_one', 0x204060));
    const [image] = out.images.images;
    assert.ok(image);
    assertPng(await fetchImage(api, image), 32, 32, inverted(0x204060));
  });

  it('runs two CallWrappers at once on one client and both complete', async () => {
    const api = await connect('sdk-two');
    const colors = [0x804020, 0x10c0f0];
    // The second is longer: on one ComfyUI it runs after the first, and the wrapper of a prompt
    // still running when another prompt of its client succeeds gives up on it.
    const outs = await Promise.all(
      colors.map((c, i) => run(api, builder(`sdk_two_${i}`, c, i === 0 ? 1 : 7))),
    );
    for (const [i, out] of outs.entries()) {
      const [image] = out.images.images;
      assert.ok(image);
      assertPng(await fetchImage(api, image), 32, 32, inverted(colors[i] as number));
    }
  });

  it('runs a batch through ComfyPool (pick-lowest) over two clients', async () => {
    // In a worker thread (see comfyui-sdk-pool.worker.ts): ComfyPool's polling loop never stops.
    const colors = [0x111111, 0x222222, 0x333333, 0x444444];
    const worker = new Worker(new URL('./comfyui-sdk-pool.worker.ts', import.meta.url), {
      workerData: { url: stack.url, colors },
    });
    try {
      const result = await new Promise<{ images?: Uint8Array[]; failures: string[]; error?: string }>(
        (resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.once('exit', (code) =>
            reject(new Error(`the pool worker exited (${code}) without a result`)),
          );
        },
      );
      failures.push(...result.failures);
      assert.equal(result.error, undefined);
      assert.equal(result.images?.length, colors.length);
      for (const [i, png] of (result.images ?? []).entries()) {
        assertPng(Buffer.from(png), 32, 32, inverted(colors[i] as number));
      }
    } finally {
      await worker.terminate();
    }
  });

  it('uploads an image and a LoadImage workflow uses it', async () => {
    const api = await connect('sdk-upload');
    const png = new PNG({ width: 8, height: 4 });
    for (let i = 0; i < png.data.length; i += 4) png.data.set([10, 200, 30, 255], i);
    const uploaded = await api.uploadImage(PNG.sync.write(png), 'sdk_upload.png');
    assert.ok(uploaded, 'uploadImage succeeded');
    assert.equal(uploaded.info.filename, 'sdk_upload.png');
    const workflow = {
      '1': { class_type: 'LoadImage', inputs: { image: uploaded.info.filename } },
      '2': {
        class_type: 'ImageScale',
        inputs: { image: ['1', 0], upscale_method: 'nearest-exact', width: 16, height: 8, crop: 'disabled' },
      },
      '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'sdk_loaded' } },
    };
    const wf = new PromptBuilder(withMeta(workflow), [], ['images']).setOutputNode('images', '3');
    let failure: Error | undefined;
    const out = (await new CallWrapper(api, wf)
      .onFailed((err) => {
        failure = err;
      })
      .run()) as { images: { images: SdkImage[] } };
    assert.equal(failure, undefined, String(failure));
    const [image] = out.images.images;
    assert.ok(image);
    assertPng(await fetchImage(api, image), 16, 8, [10, 200, 30]);
  });

  it('frees memory on the pool', async () => {
    const api = await connect('sdk-free');
    assert.equal(await api.freeMemory(true, true), true);
  });

  it('no request of the client was answered 4xx/5xx', () => {
    // The SDK probes for ComfyUI-Manager; a ComfyUI without it (like the simulated ones, whose
    // answer the facade forwards) says 404, which the SDK reads as "no manager".
    assert.deepEqual(
      failures.filter((f) => f !== 'GET /manager/version 404'),
      [],
    );
  });
});
