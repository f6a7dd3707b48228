// ComfyClient.run() and friends end to end against the simulator: outputs, events, stats, caching,
// previews, late attachment, validation and the calls around a run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ComfyClient, ComfyClosedError, ComfyValidationError, type RunEvent } from '../../src/comfy/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { eventually, freshColor, invertPrompt } from './helpers.ts';
import { RecordingProxy } from './recording-proxy.ts';

describe('ComfyClient.run against the simulator', () => {
  let sim: Simulator;
  let client: ComfyClient;
  let url: string;

  before(async () => {
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    url = sim.instances[0]!.url;
    client = new ComfyClient({ baseUrl: url, historyPollIntervalMs: 200 });
  });
  after(async () => {
    await client.close();
    await sim.close();
  });

  it('resolves with typed outputs, its own events and stats, and the file downloads', async () => {
    const events: RunEvent[] = [];
    const result = await client.run(invertPrompt(freshColor()), { onEvent: (e) => events.push(e) });
    assert.equal(client.state, 'open');
    assert.equal(result.outputs.length, 1);
    const [file] = result.outputs;
    assert.equal(file?.nodeId, '3');
    assert.equal(file?.kind, 'image');
    assert.equal(file?.type, 'output');
    assert.match(file?.filename ?? '', /^cc_invert_\d{5}_\.png$/);
    assert.deepEqual(Object.keys(result.rawOutputs), ['3']);
    const types = events.map((e) => e.type);
    for (const t of ['queued', 'started', 'executing', 'executed'] as const)
      assert.ok(types.includes(t), types.join());
    assert.ok(events.every((e) => e.promptId === result.promptId));
    const executing = events.filter((e) => e.type === 'executing').map((e) => e.nodeId);
    assert.deepEqual(executing, ['1', '2', '3']);
    const classTypes = events.flatMap((e) => (e.type === 'executing' ? [e.classType] : []));
    assert.deepEqual(classTypes, ['EmptyImage', 'ImageInvert', 'SaveImage']);
    const s = result.stats;
    assert.ok(s.startedAt !== undefined && s.startedAt >= s.queuedAt);
    assert.ok(s.finishedAt >= s.startedAt);
    assert.equal(typeof s.queueWaitMs, 'number');
    assert.equal(typeof s.executionMs, 'number');
    assert.deepEqual(Object.keys(s.nodes).sort(), ['1', '2', '3']);
    assert.deepEqual(s.cachedNodes, []);
    const chunks: Buffer[] = [];
    await client.downloadOutputs(result, async (_f, stream) => {
      for await (const c of stream) chunks.push(c as Buffer);
    });
    const png = Buffer.concat(chunks);
    assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
    assert.equal(png.readUInt32BE(16), 16); // IHDR width
    assert.equal(png.readUInt32BE(20), 8); // IHDR height
  });

  it('takes the outputs of a whole run from the socket without reading history, equal to the history entry, fresh and fully cached', async () => {
    const proxy = await RecordingProxy.start(url);
    const viaEvents = new ComfyClient({ baseUrl: proxy.url });
    const viaHistory = new ComfyClient({ baseUrl: proxy.url, outputsFrom: 'history' });
    try {
      const prompt = invertPrompt(freshColor(), 'cc_events');
      const fresh = await viaEvents.run(prompt);
      const cached = await viaEvents.run(prompt);
      assert.deepEqual([...cached.stats.cachedNodes].sort(), ['1', '2', '3']);
      const fromHistory = await viaHistory.run(prompt);
      for (const result of [fresh, cached]) {
        assert.equal(proxy.find('GET', `/history/${result.promptId}`).length, 0, 'no history read');
        const entry = await client.getHistory(result.promptId);
        assert.deepEqual(result.rawOutputs, entry?.outputs);
        assert.equal(result.outputs.length, 1);
      }
      assert.ok(
        proxy.find('GET', `/history/${fromHistory.promptId}`).length >= 1,
        "outputsFrom: 'history' reads it",
      );
      assert.deepEqual(fromHistory.outputs, cached.outputs);
    } finally {
      await viaEvents.close();
      await viaHistory.close();
      await proxy.close();
    }
  });

  it('uses a caller-supplied prompt id and reports a fully cached resubmission', async () => {
    const prompt = invertPrompt(freshColor(), 'cc_cached');
    const first = await client.run(prompt, { promptId: 'cc-first-run' });
    assert.equal(first.promptId, 'cc-first-run');
    const events: RunEvent[] = [];
    const second = await client.run(prompt, { onEvent: (e) => events.push(e) });
    assert.deepEqual([...second.stats.cachedNodes].sort(), ['1', '2', '3']);
    assert.equal(second.outputs[0]?.filename, first.outputs[0]?.filename);
    assert.ok(events.some((e) => e.type === 'cached' && e.nodes.length === 3));
    assert.ok(!events.some((e) => e.type === 'executing'));
  });

  it('attaches to a prompt that finished before anyone listened', async () => {
    const submitter = new ComfyClient({ baseUrl: url });
    try {
      const queued = await submitter.queuePrompt(invertPrompt(freshColor(), 'cc_late'));
      await eventually(
        async () => (await submitter.getPromptState(queued.promptId)) === 'completed',
        5000,
        'completion',
      );
      const result = await client.waitForPrompt(queued.promptId, { timeoutMs: 5000 });
      assert.equal(result.promptId, queued.promptId);
      assert.match(result.outputs[0]?.filename ?? '', /^cc_late_/);
      // The history timestamps stand in for the events we never saw.
      assert.ok(result.stats.startedAt !== undefined);
    } finally {
      await submitter.close();
    }
  });

  it('completes by polling when the events go to another client', async () => {
    const submitter = new ComfyClient({ baseUrl: url });
    try {
      sim.instances[0]!.setFaults({ nodeDelayMs: 30 });
      const queued = await submitter.queuePrompt(invertPrompt(freshColor(), 'cc_poll'));
      const result = await client.waitForPrompt(queued.promptId, { timeoutMs: 5000 });
      assert.match(result.outputs[0]?.filename ?? '', /^cc_poll_/);
    } finally {
      sim.instances[0]!.clearFaults();
      await submitter.close();
    }
  });

  it('delivers decoded preview frames (type 4) to the run that produced them', async () => {
    const events: RunEvent[] = [];
    const previews: unknown[] = [];
    const onPreview = (p: unknown): number => previews.push(p);
    client.on('preview', onPreview);
    try {
      await client.run(
        {
          '1': {
            class_type: 'EmptyImage',
            inputs: { width: 8, height: 4, batch_size: 2, color: freshColor() },
          },
          '2': { class_type: 'SaveImageWebsocket', inputs: { images: ['1', 0] } },
        },
        { onEvent: (e) => events.push(e) },
      );
    } finally {
      client.off('preview', onPreview);
    }
    const frames = events.filter((e) => e.type === 'preview');
    assert.equal(frames.length, 2);
    for (const f of frames) {
      assert.ok(f.type === 'preview');
      assert.equal(f.mime, 'image/png');
      assert.equal(f.nodeId, '2');
      assert.equal(f.data.subarray(0, 4).toString('hex'), '89504e47');
    }
    assert.equal(previews.length, 2);
  });

  it('rejects an invalid prompt with ComfyUI’s error and node_errors unchanged', async () => {
    const bad = invertPrompt(freshColor());
    delete (bad['1']!.inputs as Record<string, unknown>).width;
    await assert.rejects(client.run(bad), (err: unknown) => {
      assert.ok(err instanceof ComfyValidationError);
      assert.equal(err.code, 'comfy_validation');
      assert.equal(err.retryable, false);
      assert.equal(err.error.type, 'prompt_outputs_failed_validation');
      const node = err.nodeErrors['1'] as {
        errors: Array<{ type: string; details: string }>;
        class_type: string;
      };
      assert.equal(node.class_type, 'EmptyImage');
      assert.equal(node.errors[0]?.type, 'required_input_missing');
      assert.equal(node.errors[0]?.details, 'width');
      return true;
    });
    assert.equal(client.activeRuns, 0);
  });

  it('rejects malformed prompts before any I/O', async () => {
    await assert.rejects(client.run({ '1': { inputs: {} } } as never), { code: 'comfy_invalid_argument' });
    await assert.rejects(client.run([] as never), { code: 'comfy_invalid_argument' });
  });

  it('refuses non-finite timeouts with comfy_invalid_argument before anything is sent', async () => {
    const before = await client.getHistories();
    for (const bad of [Number.POSITIVE_INFINITY, Number.NaN, '5000' as unknown as number]) {
      await assert.rejects(client.run(invertPrompt(freshColor()), { timeoutMs: bad }), {
        code: 'comfy_invalid_argument',
        message: /timeoutMs must be a finite number of milliseconds/,
      });
      await assert.rejects(client.waitForPrompt('some-id', { timeoutMs: bad }), {
        code: 'comfy_invalid_argument',
      });
      await assert.rejects(client.getQueue({ timeoutMs: bad }), { code: 'comfy_invalid_argument' });
    }
    assert.throws(() => new ComfyClient({ baseUrl: url, requestTimeoutMs: Number.POSITIVE_INFINITY }), {
      code: 'comfy_invalid_argument',
      message: /requestTimeoutMs/,
    });
    assert.throws(() => new ComfyClient({ baseUrl: url, heartbeat: { timeoutMs: Number.NaN } }), {
      code: 'comfy_invalid_argument',
    });
    assert.equal(client.activeRuns, 0);
    assert.equal(sim.instances[0]!.stats.queueLength, 0);
    assert.deepEqual(Object.keys(await client.getHistories()), Object.keys(before));
  });

  it('reads queue, history, object_info and system stats', async () => {
    const result = await client.run(invertPrompt(freshColor(), 'cc_hist'));
    assert.equal(await client.getPromptState(result.promptId), 'completed');
    assert.equal(await client.getPromptState('no-such-prompt'), 'unknown');
    const entry = await client.getHistory(result.promptId);
    assert.ok(entry);
    assert.equal(entry.status?.status_str, 'success');
    const recent = await client.getHistories({ maxItems: 1 });
    assert.deepEqual(Object.keys(recent), [result.promptId]);
    await client.deleteHistory([result.promptId]);
    assert.equal(await client.getHistory(result.promptId), undefined);
    const queue = await client.getQueue();
    assert.deepEqual(queue, { running: [], pending: [] });
    const info = await client.getObjectInfo();
    assert.equal(info.SaveImage?.output_node, true);
    assert.equal(await client.getObjectInfo(), info, 'cached');
    assert.equal((await client.getNodeInfo('ImageInvert'))?.name, 'ImageInvert');
    assert.equal(await client.getNodeInfo('NoSuchNode'), undefined);
    const stats = await client.getSystemStats();
    assert.equal(typeof stats.system.comfyui_version, 'string');
    assert.ok(Array.isArray(stats.devices));
  });

  it('uploads an image and runs a prompt that loads it', async () => {
    const source = await client.run(invertPrompt(freshColor(), 'cc_src'));
    const chunks: Buffer[] = [];
    await client.downloadOutputs(source, async (_f, s) => {
      for await (const c of s) chunks.push(c as Buffer);
    });
    const png = Buffer.concat(chunks);
    const name = `cc_upload_${freshColor()}.png`;
    const uploaded = await client.uploadImage(png, { filename: name });
    assert.deepEqual(uploaded, { name, subfolder: '', type: 'input' });
    const again = await client.uploadImage(png, { filename: name });
    assert.equal(again.name, name, 'identical bytes keep the name');
    const result = await client.run({
      '1': { class_type: 'LoadImage', inputs: { image: uploaded.name } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'cc_loaded' } },
    });
    assert.equal(result.outputs.length, 1);
    const view = await client.view({ filename: uploaded.name, type: 'input' });
    const back: Buffer[] = [];
    for await (const c of view.body) back.push(Buffer.from(c));
    assert.deepEqual(Buffer.concat(back), png);
    assert.equal(view.contentType, 'image/png');
    await assert.rejects(client.view({ filename: 'missing.png' }), { code: 'comfy_server', status: 404 });
  });

  it('fails fast with comfy_closed after close(), which is idempotent', async () => {
    const c = new ComfyClient({ baseUrl: url });
    await c.connect();
    assert.equal(c.state, 'open');
    const states: string[] = [];
    c.on('state', (s) => states.push(s));
    await Promise.all([c.close(), c.close()]);
    await c.close();
    assert.equal(c.state, 'closed');
    assert.deepEqual(states, ['closed']);
    await assert.rejects(c.run(invertPrompt(1)), ComfyClosedError);
    await assert.rejects(c.getQueue(), { code: 'comfy_closed' });
    await assert.rejects(c.connect(), { code: 'comfy_closed' });
  });

  it('ends in-flight runs with comfy_closed when the client closes', async () => {
    const c = new ComfyClient({ baseUrl: url });
    sim.instances[0]!.setFaults({ hang: true });
    try {
      let started!: () => void;
      const startedP = new Promise<void>((r) => {
        started = r;
      });
      const run = c.run(invertPrompt(freshColor()), { onEvent: (e) => e.type === 'started' && started() });
      const rejected = assert.rejects(run, { code: 'comfy_closed' });
      await startedP;
      await c.close();
      await rejected;
      assert.equal(c.activeRuns, 0);
    } finally {
      sim.instances[0]!.clearFaults();
      await client.interrupt();
    }
  });
});
