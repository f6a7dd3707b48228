// The native ComfyUI facade end to end: our own ComfyClient talks to the gateway as if it were one
// ComfyUI, over real simulator instances on loopback (runs, uploads + LoadImage, validation,
// interrupt, queue, history, view, object_info, system_stats, the socket's messages).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import WebSocket from 'ws';
import { type ApiPrompt, ComfyClient, ComfyValidationError } from '../../src/comfy/index.ts';
import { invertPrompt, type Json, startTestStack, type TestStack } from '../support/gateway.ts';
import { TRANSCRIPTS_DIR } from '../support/shared.ts';

const examples = new URL('../../examples/', import.meta.url);

async function body(stream: NodeJS.ReadableStream | ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** A socket on the facade that records every message; waits are bounded. */
class Recorder {
  readonly messages: Array<{ type: string; data: Json }> = [];
  readonly binary: Buffer[] = [];
  readonly ws: WebSocket;
  #waiters: Array<() => void> = [];

  constructor(url: string, clientId: string) {
    this.ws = new WebSocket(`${url.replace('http', 'ws')}/ws?clientId=${clientId}`);
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) this.binary.push(data as Buffer);
      else this.messages.push(JSON.parse(String(data)));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves when `pred` holds over the messages so far (or rejects after `ms`). */
  async until(pred: (m: Recorder['messages']) => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; saw ${this.messages.map((m) => m.type).join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

describe('native ComfyUI facade over two simulator instances', () => {
  let stack: TestStack;
  let client: ComfyClient;

  before(async () => {
    stack = await startTestStack({ instances: 2, env: { DATA_DIR: '/tmp/comfy-facade-test' } });
    client = new ComfyClient({ baseUrl: stack.url, historyPollIntervalMs: 200 });
  });
  after(async () => {
    await client.close();
    await stack.close();
  });

  it('runs examples/invert.json with ComfyClient.run, and /view serves the pixels', async () => {
    const prompt = JSON.parse(await readFile(new URL('invert.json', examples), 'utf8')) as ApiPrompt;
    const events: string[] = [];
    const result = await client.run(prompt, { timeoutMs: 20_000, onEvent: (e) => events.push(e.type) });
    assert.equal(result.outputs.length, 1);
    const file = result.outputs[0]!;
    assert.equal(file.nodeId, '3');
    assert.match(file.filename, /^gw_invert_\d{5}_\.png$/);
    assert.match(file.subfolder, /^gw-[0-9a-f]{8}$/);
    assert.ok(events.includes('started'), events.join());
    const view = await client.view(file);
    assert.equal(view.status, 200);
    const png = PNG.sync.read(await body(view.body));
    const recorded = PNG.sync.read(
      await readFile(join(TRANSCRIPTS_DIR, 'files', 'prompt_success_invert_output.png')),
    );
    assert.equal(png.width, 512);
    assert.ok(png.data.equals(recorded.data), 'pixel-exact with the real ComfyUI output');
    // The job behind it is an ordinary gateway job.
    const history = await client.getHistory(result.promptId);
    assert.equal(history?.status?.status_str, 'success');
    const jobId = (await stack.request(`/api/v2/jobs?limit=5`)).body.jobs.find(
      (j: Json) => j.metadata?.comfy_facade?.prompt_id === result.promptId,
    )?.id;
    assert.ok(jobId, 'the prompt is visible as a v2 job');
    const job = await stack.request(`/api/v2/jobs/${jobId}`);
    assert.equal(job.body.status, 'succeeded');
  });

  it('spreads parallel runs over both instances and keeps same-named outputs apart', async () => {
    const results = await Promise.all(
      [0x112233, 0x445566, 0x778899, 0xaabbcc].map((color) => {
        const p = invertPrompt('same') as ApiPrompt;
        (p['1'] as Json).inputs.color = color;
        return client.run(p, { timeoutMs: 20_000 });
      }),
    );
    const tags = new Set(results.map((r) => r.outputs[0]!.subfolder));
    assert.equal(tags.size, 2, 'both instances ran prompts');
    const digests = new Set<string>();
    for (const r of results) {
      const v = await client.view(r.outputs[0]!);
      digests.add((await body(v.body)).toString('base64'));
    }
    assert.equal(digests.size, 4, 'each run has its own image');
  });

  it('answers a validation failure with ComfyUI 400 shape and node_errors', async () => {
    const bad = invertPrompt('bad') as ApiPrompt;
    (bad['1'] as Json).inputs.width = 0;
    await assert.rejects(client.queuePrompt(bad), (err: unknown) => {
      assert.ok(err instanceof ComfyValidationError);
      assert.equal(err.error.type, 'prompt_outputs_failed_validation');
      const n = err.nodeErrors['1'] as Json;
      assert.equal(n.class_type, 'EmptyImage');
      assert.deepEqual(n.dependent_outputs, ['3']);
      assert.equal(n.errors[0].type, 'value_smaller_than_min');
      assert.equal(n.errors[0].message, 'Value 0 smaller than min of 1');
      assert.equal(n.errors[0].details, 'width');
      return true;
    });
    const unknown = await stack.request('/prompt', {
      body: { prompt: { '1': { class_type: 'NoSuchNode', inputs: {} } } },
    });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body, {
      error: {
        type: 'invalid_prompt',
        message: 'Cannot execute because node NoSuchNode does not exist.',
        details: "Node ID '#1'",
        extra_info: {},
      },
      node_errors: {},
    });
    const missing = await stack.request('/prompt', {
      body: {
        prompt: {
          ...invertPrompt('lm'),
          '1': { class_type: 'LoadImage', inputs: { image: 'does_not_exist.png' } },
        },
      },
    });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body.node_errors['1'].errors[0], {
      type: 'custom_validation_failed',
      message: 'Custom validation failed for node',
      details: 'image - Invalid image file: does_not_exist.png',
      extra_info: { input_name: 'image' },
    });
    const none = await stack.request('/api/prompt', { body: { nothing: true } });
    assert.equal(none.status, 400);
    assert.equal(none.body.error.type, 'no_prompt');
  });

  it('uploads an image and a later LoadImage prompt gets it on its instance', async () => {
    const png = await readFile(new URL('example.png', examples));
    const first = await client.uploadImage(png, { filename: 'facade_example.png' });
    assert.deepEqual(first, { name: 'facade_example.png', subfolder: '', type: 'input' });
    const again = await client.uploadImage(png, { filename: 'facade_example.png' });
    assert.equal(again.name, 'facade_example.png', 'same bytes, same name');
    const other = await client.uploadImage(Buffer.concat([png, Buffer.from([0])]), {
      filename: 'facade_example.png',
    });
    assert.equal(other.name, 'facade_example (1).png', 'other bytes are renamed');
    const sub = await client.uploadImage(png, { filename: 'in_sub.png', subfolder: 'a/b' });
    assert.deepEqual(sub, { name: 'in_sub.png', subfolder: 'a/b', type: 'input' });
    const view = await client.view({ filename: 'in_sub.png', subfolder: 'a/b', type: 'input' });
    assert.deepEqual(await body(view.body), png);

    const prompt = JSON.parse(await readFile(new URL('upload.json', examples), 'utf8')) as ApiPrompt;
    (prompt['1'] as Json).inputs.image = 'a/b/in_sub.png';
    const result = await client.run(prompt, { timeoutMs: 20_000 });
    const out = await body((await client.view(result.outputs[0]!)).body);
    assert.equal(out.readUInt32BE(16), 128);
    assert.equal(out.readUInt32BE(20), 96);
    const history = (await client.getHistory(result.promptId)) as Json;
    assert.equal(history.prompt[2]['1'].inputs.image, 'a/b/in_sub.png', 'history keeps the name');
  });

  it('relays ComfyUI messages for a client id and a status on connect', async () => {
    const rec = new Recorder(stack.url, 'facade-ws-1');
    try {
      await rec.until((m) => m.some((x) => x.type === 'status'));
      assert.equal(rec.messages[0]?.data.sid, 'facade-ws-1');
      const res = await stack.request('/prompt', {
        body: { prompt: invertPrompt('ws'), client_id: 'facade-ws-1' },
      });
      assert.equal(res.status, 200);
      const id = res.body.prompt_id;
      await rec.until((m) =>
        m.some((x) => x.type === 'executing' && x.data.node === null && x.data.prompt_id === id),
      );
      const types = rec.messages.filter((m) => m.data?.prompt_id === id).map((m) => m.type);
      for (const t of ['execution_start', 'execution_cached', 'executed', 'execution_success'])
        assert.ok(types.includes(t), types.join());
      const executed = rec.messages.find((m) => m.type === 'executed')!;
      assert.equal(executed.data.node, '3');
      assert.match(executed.data.output.images[0].filename, /^ws_\d{5}_\.png$/);
    } finally {
      rec.close();
    }
  });
});

describe('native ComfyUI facade: masks, editor format, failures, sockets', () => {
  let stack: TestStack;
  let client: ComfyClient;

  before(async () => {
    stack = await startTestStack({ instances: 1, env: { DATA_DIR: '/tmp/comfy-facade-test' } });
    client = new ComfyClient({ baseUrl: stack.url, historyPollIntervalMs: 100 });
  });
  after(async () => {
    await client.close();
    await stack.close();
    stack.sim.instances[0]?.clearFaults();
  });

  it('composites an uploaded mask into the original image alpha like ComfyUI', async () => {
    const original = new PNG({ width: 4, height: 2 });
    original.data.fill(200);
    const mask = new PNG({ width: 4, height: 2 });
    for (let i = 0; i < 8; i++) mask.data[i * 4 + 3] = i * 30;
    const up = await client.uploadImage(PNG.sync.write(original), { filename: 'm_orig.png' });
    const res = await client.uploadMask(PNG.sync.write(mask), {
      filename: 'm_masked.png',
      mask: { originalRef: { filename: up.name, subfolder: up.subfolder, type: up.type } },
    } as Json);
    assert.equal(res.name, 'm_masked.png');
    const view = await client.view({ filename: res.name, subfolder: res.subfolder, type: 'input' });
    const out = PNG.sync.read(await body(view.body));
    assert.deepEqual(
      Array.from({ length: 8 }, (_, i) => out.data[i * 4 + 3]),
      Array.from({ length: 8 }, (_, i) => i * 30),
    );
    assert.equal(out.data[0], 200);
    const bad = await fetch(`${stack.url}/upload/mask`, { method: 'POST', body: formWith('image', 'x.png') });
    assert.equal(bad.status, 400, 'a mask without original_ref is refused');
  });

  it('accepts an editor-format (UI) workflow and runs it', async () => {
    const ui = {
      last_node_id: 3,
      last_link_id: 2,
      version: 0.4,
      nodes: [
        {
          id: 1,
          type: 'EmptyImage',
          mode: 0,
          inputs: [],
          outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [1] }],
          widgets_values: [32, 16, 1, 0],
        },
        {
          id: 2,
          type: 'ImageInvert',
          mode: 0,
          inputs: [{ name: 'image', type: 'IMAGE', link: 1 }],
          outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [2] }],
          widgets_values: [],
        },
        {
          id: 3,
          type: 'SaveImage',
          mode: 0,
          inputs: [{ name: 'images', type: 'IMAGE', link: 2 }],
          outputs: [],
          widgets_values: ['ui_fmt'],
        },
      ],
      links: [
        [1, 1, 0, 2, 0, 'IMAGE'],
        [2, 2, 0, 3, 0, 'IMAGE'],
      ],
    };
    const res = await stack.request('/prompt', { body: { prompt: ui } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const result = await client.waitForPrompt(res.body.prompt_id, { timeoutMs: 15_000 });
    assert.match(result.outputs[0]?.filename ?? '', /^ui_fmt_\d{5}_\.png$/);
    const png = PNG.sync.read(await body((await client.view(result.outputs[0]!)).body));
    assert.deepEqual([png.width, png.height], [32, 16]);
  });

  it('reports a node failure as execution_error on the socket and in history', async () => {
    stack.sim.instances[0]!.setFaults({ failAtNode: '2' });
    const rec = new Recorder(stack.url, 'facade-err');
    try {
      await rec.until((m) => m.length > 0);
      const res = await stack.request('/prompt', {
        body: { prompt: invertPrompt('err'), client_id: 'facade-err' },
      });
      const id = res.body.prompt_id;
      await rec.until((m) =>
        m.some((x) => x.type === 'executing' && x.data.node === null && x.data.prompt_id === id),
      );
      const error = rec.messages.find((m) => m.type === 'execution_error')!;
      assert.equal(error.data.prompt_id, id);
      assert.equal(error.data.node_id, '2');
      assert.equal(error.data.node_type, 'ImageInvert');
      assert.equal(typeof error.data.exception_message, 'string');
      const entry = (await stack.request(`/history/${id}`)).body[id];
      assert.equal(entry.status.status_str, 'error');
      assert.ok(entry.status.messages.some((m: Json) => m[0] === 'execution_error'));
    } finally {
      rec.close();
      stack.sim.instances[0]!.clearFaults();
    }
  });

  it('gives a socket without clientId a fresh sid, answers feature_flags, and lets a newer socket take over', async () => {
    const anon = new WebSocket(`${stack.url.replace('http', 'ws')}/api/ws`);
    const first = await new Promise<Json>((resolve) =>
      anon.once('message', (d) => resolve(JSON.parse(String(d)))),
    );
    assert.match(first.data.sid, /^[0-9a-f]{32}$/);
    anon.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    const flags = await new Promise<Json>((resolve) =>
      anon.once('message', (d) => resolve(JSON.parse(String(d)))),
    );
    assert.equal(flags.type, 'feature_flags');
    assert.equal(flags.data.supports_preview_metadata, true);
    anon.terminate();

    const old = new Recorder(stack.url, 'facade-take');
    await old.until((m) => m.length > 0);
    const fresh = new Recorder(stack.url, 'facade-take');
    try {
      await fresh.until((m) => m.length > 0);
      const res = await stack.request('/prompt', {
        body: { prompt: invertPrompt('take'), client_id: 'facade-take' },
      });
      await fresh.until((m) =>
        m.some((x) => x.type === 'execution_success' && x.data.prompt_id === res.body.prompt_id),
      );
      assert.ok(
        !old.messages.some((x) => x.data?.prompt_id === res.body.prompt_id),
        'the old socket gets nothing',
      );
    } finally {
      old.close();
      fresh.close();
    }
  });
});

function formWith(field: string, filename: string): FormData {
  const form = new FormData();
  form.append(field, new Blob([Buffer.from('not really')], { type: 'image/png' }), filename);
  return form;
}

describe('native ComfyUI facade: queue, interrupt, history and discovery', () => {
  let stack: TestStack;
  let client: ComfyClient;

  before(async () => {
    stack = await startTestStack({
      instances: 1,
      nodeDelayMs: 150,
      env: { DATA_DIR: '/tmp/comfy-facade-test', MAX_JOBS_PER_INSTANCE: '1' },
    });
    client = new ComfyClient({ baseUrl: stack.url, historyPollIntervalMs: 100 });
  });
  after(async () => {
    await client.close();
    await stack.close();
  });

  const submit = async (tag: string, extra: Record<string, unknown> = {}) => {
    const res = await stack.request('/prompt', { body: { prompt: invertPrompt(tag), ...extra } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { prompt_id: string; number: number; node_errors: Json };
  };

  it('lists running and pending prompts as ComfyUI queue items, deletes pending ones, and interrupts', async () => {
    const rec = new Recorder(stack.url, 'facade-q');
    try {
      const a = await submit('qa', { client_id: 'facade-q', extra_data: { extra_pnginfo: { x: 1 } } });
      const b = await submit('qb', { client_id: 'facade-q' });
      const c = await submit('qc', { client_id: 'facade-q', prompt_id: 'my-own-id' });
      assert.equal(c.prompt_id, 'my-own-id');
      assert.ok(b.number > a.number && c.number > b.number);
      await rec.until((m) => m.some((x) => x.type === 'execution_start' && x.data.prompt_id === a.prompt_id));
      const queue = (await stack.request('/queue')).body;
      assert.equal(queue.queue_running.length, 1);
      const [number, id, prompt, extra, outputs] = queue.queue_running[0];
      assert.deepEqual([number, id], [a.number, a.prompt_id]);
      assert.equal(prompt['3'].class_type, 'SaveImage');
      assert.deepEqual(extra.extra_pnginfo, { x: 1 });
      assert.equal(extra.client_id, 'facade-q');
      assert.deepEqual(outputs, ['3']);
      assert.deepEqual(
        queue.queue_pending.map((q: Json) => q[1]),
        [b.prompt_id, 'my-own-id'],
      );
      assert.equal((await stack.request('/api/prompt')).body.exec_info.queue_remaining, 3);

      // Delete a pending one: it never runs and never shows in history.
      await client.deleteFromQueue(['my-own-id']);
      const after1 = (await stack.request('/queue')).body;
      assert.deepEqual(
        after1.queue_pending.map((q: Json) => q[1]),
        [b.prompt_id],
      );
      // Interrupt the running one by id.
      await client.interrupt(a.prompt_id);
      await rec.until((m) =>
        m.some((x) => x.type === 'execution_interrupted' && x.data.prompt_id === a.prompt_id),
      );
      await rec.until((m) =>
        m.some((x) => x.type === 'executing' && x.data.node === null && x.data.prompt_id === a.prompt_id),
      );
      const ha = (await client.getHistory(a.prompt_id)) as Json;
      assert.equal(ha.status.status_str, 'error');
      assert.equal(ha.status.completed, false);
      assert.ok(ha.status.messages.some((m: Json) => m[0] === 'execution_interrupted'));
      // b runs next and succeeds; the deleted prompt has no history.
      const rb = await client.waitForPrompt(b.prompt_id, { timeoutMs: 15_000 });
      assert.equal(rb.outputs.length, 1);
      assert.deepEqual((await stack.request('/history/my-own-id')).body, {});
      assert.equal(await client.getPromptState('my-own-id'), 'unknown');
    } finally {
      rec.close();
    }
  });

  it('interrupt without a prompt id stops every running facade prompt', async () => {
    const a = await submit('ia');
    await eventually(async () => (await client.getPromptState(a.prompt_id)) === 'running');
    await client.interrupt();
    await eventually(async () => (await client.getPromptState(a.prompt_id)) === 'failed');
  });

  it('serves history with max_items, deletes and clears it (jobs stay in the v2 API)', async () => {
    const one = await submit('h1');
    await client.waitForPrompt(one.prompt_id, { timeoutMs: 15_000 });
    const two = await submit('h2');
    await client.waitForPrompt(two.prompt_id, { timeoutMs: 15_000 });
    const last = (await stack.request('/history?max_items=1')).body;
    assert.deepEqual(Object.keys(last), [two.prompt_id]);
    const entry = last[two.prompt_id];
    assert.deepEqual(Object.keys(entry).sort(), ['meta', 'outputs', 'prompt', 'status']);
    assert.deepEqual(
      entry.status.messages.map((m: Json) => m[0]),
      ['execution_start', 'execution_cached', 'execution_success'],
    );
    assert.deepEqual(entry.meta['3'], {
      node_id: '3',
      display_node: '3',
      parent_node: null,
      real_node_id: '3',
    });
    await client.deleteHistory([two.prompt_id]);
    assert.deepEqual((await stack.request(`/api/history/${two.prompt_id}`)).body, {});
    assert.ok(one.prompt_id in (await stack.request('/history')).body);
    await client.clearHistory();
    assert.deepEqual((await stack.request('/history')).body, {});
    assert.equal((await stack.request(`/api/v2/jobs/${one.prompt_id}`)).body.status, 'succeeded');
  });

  it('answers object_info, system_stats and features in ComfyUI shapes', async () => {
    const all = await client.getObjectInfo({ refresh: true });
    assert.ok(Object.keys(all).length > 100);
    assert.equal((await client.getNodeInfo('ImageInvert'))?.name, 'ImageInvert');
    assert.deepEqual((await stack.request('/object_info/NoSuchNode')).body, {});
    const stats = (await stack.request('/api/system_stats')).body;
    assert.equal(stats.system.gateway.name, 'comfy-gateway');
    assert.equal(stats.system.gateway.instances.length, 1);
    assert.equal(typeof stats.system.comfyui_version, 'string');
    assert.ok(stats.devices.length >= 1);
    assert.equal(typeof stats.devices[0].vram_total, 'number');
    const features = await client.getFeatures();
    assert.equal(features.supports_preview_metadata, true);
    assert.equal(typeof features.max_upload_size, 'number');
  });

  it('follows ComfyUI /view error codes', async () => {
    assert.equal((await fetch(`${stack.url}/view`)).status, 404);
    assert.equal((await fetch(`${stack.url}/view?filename=x.png&type=bogus`)).status, 400);
    assert.equal((await fetch(`${stack.url}/view?filename=../x.png`)).status, 400);
    assert.equal((await fetch(`${stack.url}/view?filename=x.png&subfolder=../..`)).status, 403);
    assert.equal((await fetch(`${stack.url}/view?filename=nope.png`)).status, 404);
  });
});

/** Polls `check` until it holds (bounded). */
async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
