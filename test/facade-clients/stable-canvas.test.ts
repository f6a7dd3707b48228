// `@stable-canvas/comfyui-client` (installed as is, on Node's own fetch and WebSocket) against the
// facade over two simulated instances: enqueue over the socket (file outputs and
// SaveImageWebsocket's binary frames), enqueue_polling, interrupt (global and by id), free,
// getEmbeddings, getExtensions. Every call completes, with the right images, and no request of the
// client is answered 4xx/5xx.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Workflow } from '@stable-canvas/comfyui-client';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { assertPng, chainWorkflow, inverted, invertWorkflow, watchFetch } from './helpers.ts';

describe('@stable-canvas/comfyui-client against the facade', () => {
  let stack: TestStack;
  let client: Client;
  const failures: string[] = [];
  let unwatch = () => {};

  before(async () => {
    stack = await startTestStack({ instances: 2, nodeDelayMs: 20 });
    unwatch = watchFetch(stack.url, failures);
    client = new Client({ api_host: new URL(stack.url).host, clientId: 'stable-canvas-1' });
    await client.connect({ timeout_ms: 10_000 });
  });
  after(async () => {
    client.close();
    unwatch();
    await stack.close();
  });

  async function urlImage(image: { type: string; data: unknown }): Promise<Buffer> {
    assert.equal(image.type, 'url');
    const res = await fetch(image.data as string);
    assert.equal(res.status, 200);
    return Buffer.from(await res.arrayBuffer());
  }

  it('enqueue (WebSocket) resolves with the output image', async () => {
    const out = await client.enqueue(invertWorkflow('sc_ws', 0x123456), { timeout_ms: 15_000 });
    assert.equal(out.images.length, 1);
    assertPng(await urlImage(out.images[0] as { type: string; data: unknown }), 32, 32, inverted(0x123456));
  });

  it('a Workflow invoked over the socket collects SaveImageWebsocket images from binary frames', async () => {
    const wf = new Workflow();
    const cls = wf.classes as unknown as Record<string, (inputs: Record<string, unknown>) => unknown[]>;
    const [image] = cls.EmptyImage?.({ width: 24, height: 16, batch_size: 2, color: 0x00ff00 }) ?? [];
    cls.SaveImageWebsocket?.({ images: image });
    const out = await wf.invoke(client);
    const buffers = out.images.filter((i) => i.type === 'buff');
    assert.equal(buffers.length, 2, 'both images of the batch arrived as frames');
    for (const frame of buffers) {
      assert.equal(frame.mime, 'image/png');
      assertPng(Buffer.from(frame.data as ArrayBuffer), 24, 16, [0, 255, 0]);
    }
  });

  it('enqueue_polling resolves with the output image', async () => {
    const out = await client.enqueue_polling(invertWorkflow('sc_poll', 0x654321), {
      polling_ms: 50,
      timeout_ms: 15_000,
    });
    assert.equal(out.images.length, 1);
    assertPng(await urlImage(out.images[0] as { type: string; data: unknown }), 32, 32, inverted(0x654321));
  });

  it('interrupt() stops the running prompt of this client, interrupt(id) a named one', async () => {
    for (const byId of [false, true]) {
      const queued = await client.queuePrompt(0, {
        prompt: chainWorkflow(`sc_int_${byId}`, 1, 40),
        workflow: {},
      });
      const id = (queued as { prompt_id: string }).prompt_id;
      const interrupted = new Promise<{ prompt_id: string }>((resolve) => {
        const off = client.on('execution_interrupted', (data) => {
          if (data.prompt_id !== id) return;
          off();
          resolve(data);
        });
      });
      await new Promise<void>((resolve) => {
        const off = client.on('executing', (data: { prompt_id?: string; node?: string | null }) => {
          if (data.prompt_id !== id || !data.node) return;
          off();
          resolve();
        });
      });
      await client.interrupt(byId ? id : null);
      const data = await interrupted;
      assert.equal(data.prompt_id, id);
    }
  });

  it('free, getEmbeddings and getExtensions answer like ComfyUI', async () => {
    await client.free({ unload_models: true, free_memory: true });
    assert.deepEqual(await client.getEmbeddings(), []);
    assert.ok(Array.isArray(await client.getExtensions()));
  });

  it('no request of the client was answered 4xx/5xx', () => {
    assert.deepEqual(failures, []);
  });
});
