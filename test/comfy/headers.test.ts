// Per-call headers (request-id propagation): what actually reaches ComfyUI, recorded by a loopback
// proxy in front of the simulator — a run's own calls carry its headers, a concurrent run's do not,
// and bad headers are refused before anything is sent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ComfyAbortError,
  ComfyArgumentError,
  ComfyClient,
  type RunEvent,
  type RunResult,
} from '../../src/comfy/index.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { callHeaders, clientHeaders } from '../../src/comfy/headers.ts';
import { freshColor, invertPrompt } from './helpers.ts';
import { type RecordedRequest, RecordingProxy } from './recording-proxy.ts';

/** Resolves when `onEvent` sees an event of `type`. */
function eventLatch(type: RunEvent['type']): { onEvent: (e: RunEvent) => void; seen: Promise<RunEvent> } {
  let resolve!: (e: RunEvent) => void;
  const seen = new Promise<RunEvent>((r) => {
    resolve = r;
  });
  return { onEvent: (e) => e.type === type && resolve(e), seen };
}

/** The prompt id of a recorded POST /prompt. */
function postedPromptId(r: RecordedRequest): string {
  return (JSON.parse(r.body) as { prompt_id: string }).prompt_id;
}

describe('ComfyClient per-call headers', () => {
  let sim: Simulator;
  let proxy: RecordingProxy;
  let client: ComfyClient;

  before(async () => {
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    proxy = await RecordingProxy.start(sim.instances[0]!.url);
    client = new ComfyClient({
      baseUrl: proxy.url,
      headers: { 'X-Tenant': 'base' },
      historyPollIntervalMs: 30,
    });
  });
  after(async () => {
    await client.close();
    await proxy.close();
    await sim.close();
  });

  it('carries a run’s headers on POST /prompt, its history polls and the cancel on abort, not on a concurrent run', async () => {
    // B (no headers) runs first; A (req-A) hangs once started; C (req-C) waits behind A. Each is
    // submitted once the previous one is queued, so the server's order is known. Every wait below is
    // bounded by the runs' own deadlines (a run that settles early ends the race).
    const bound = { timeoutMs: 15_000 };
    const queuedB = eventLatch('queued');
    const runB = client.run(invertPrompt(freshColor(), 'rh_b'), {
      ...bound,
      promptId: 'rh-b',
      extraData: { simulator: { node_delay_ms: 60 } },
      onEvent: queuedB.onEvent,
    });
    await Promise.race([queuedB.seen, runB]);
    const controllerA = new AbortController();
    const queuedA = eventLatch('queued');
    const startedA = eventLatch('started');
    const runA = client.run(invertPrompt(freshColor(), 'rh_a'), {
      ...bound,
      promptId: 'rh-a',
      headers: { 'X-Request-Id': 'req-A', 'x-tenant': 'tenant-a' },
      extraData: { simulator: { hang: true } },
      signal: controllerA.signal,
      onEvent: (e) => {
        queuedA.onEvent(e);
        startedA.onEvent(e);
      },
    });
    const outcomeA = runA.then(
      () => undefined,
      (err: unknown) => err,
    );
    const controllerC = new AbortController();
    let outcomeC: Promise<unknown> = Promise.resolve();
    try {
      await Promise.race([queuedA.seen, runA]);
      const runC = client.run(invertPrompt(freshColor(), 'rh_c'), {
        ...bound,
        promptId: 'rh-c',
        headers: { 'x-request-id': 'req-C' },
        signal: controllerC.signal,
      });
      outcomeC = runC.then(
        () => undefined,
        (err: unknown) => err,
      );
      const resultB: RunResult = await runB;
      assert.equal(resultB.promptId, 'rh-b');
      await Promise.race([startedA.seen, runA]);
      await proxy.waitFor((r) => r.method === 'GET' && r.path === '/history/rh-a');
      await proxy.waitFor((r) => r.method === 'GET' && r.path === '/history/rh-c');

      // C is pending: aborting it deletes it from the queue, with C's id.
      controllerC.abort();
      assert.ok((await outcomeC) instanceof ComfyAbortError);
      const deleteC = proxy
        .find('POST', '/queue')
        .find((r) => JSON.stringify(JSON.parse(r.body)) === JSON.stringify({ delete: ['rh-c'] }));
      assert.ok(deleteC, 'the pending prompt was deleted');
      assert.equal(deleteC.headers['x-request-id'], 'req-C');

      // A is running: aborting it interrupts it on the server, with A's id.
      controllerA.abort();
      assert.ok((await outcomeA) instanceof ComfyAbortError);
      const interruptA = proxy.find('POST', '/interrupt').find((r) => r.body.includes('"rh-a"'));
      assert.ok(interruptA, 'the running prompt was interrupted');
      assert.equal(interruptA.headers['x-request-id'], 'req-A');
      assert.equal(interruptA.headers['x-tenant'], 'tenant-a');
    } finally {
      // Whatever failed above, leave no hanging prompt behind for the next test.
      controllerC.abort();
      controllerA.abort();
      await Promise.all([outcomeA, outcomeC, runB.catch(() => undefined)]);
      await client.interrupt().catch(() => undefined);
      await client.clearQueue().catch(() => undefined);
    }

    const posts = new Map(proxy.find('POST', '/prompt').map((r) => [postedPromptId(r), r]));
    assert.equal(posts.get('rh-a')?.headers['x-request-id'], 'req-A');
    // A per-call header replaces the client's one of the same name (case-insensitive), never joins it.
    assert.equal(posts.get('rh-a')?.headers['x-tenant'], 'tenant-a');
    assert.equal(posts.get('rh-c')?.headers['x-request-id'], 'req-C');
    assert.equal(posts.get('rh-b')?.headers['x-request-id'], undefined);
    assert.equal(posts.get('rh-b')?.headers['x-tenant'], 'base');

    const polls = (id: string) => proxy.find('GET', `/history/${id}`);
    assert.ok(polls('rh-a').length >= 1);
    assert.ok(polls('rh-a').every((r) => r.headers['x-request-id'] === 'req-A'));
    assert.ok(polls('rh-c').every((r) => r.headers['x-request-id'] === 'req-C'));
    assert.ok(polls('rh-b').length >= 1);
    assert.ok(polls('rh-b').every((r) => r.headers['x-request-id'] === undefined));
    assert.ok(polls('rh-b').every((r) => r.headers['x-tenant'] === 'base'));

    // The shared WebSocket carries the client's headers only.
    const upgrade = proxy.requests.find((r) => r.upgrade);
    assert.ok(upgrade, 'the socket went through the proxy');
    assert.equal(upgrade.headers['x-tenant'], 'base');
    assert.equal(upgrade.headers['x-request-id'], undefined);
    assert.equal(client.activeRuns, 0);
  });

  it('sends per-call headers on queuePrompt, waitForPrompt, getHistory, view, downloads, uploads, interrupt and cancel', async () => {
    const queued = await client.queuePrompt(invertPrompt(freshColor(), 'rh_q'), {
      promptId: 'rh-q',
      headers: { 'x-request-id': 'q-1' },
    });
    assert.equal(queued.promptId, 'rh-q');
    // Attached after it finished, so the attach has to read history (a run the socket sees whole
    // takes its outputs from the events).
    const deadline = Date.now() + 15_000;
    while ((await client.getPromptState('rh-q')) !== 'completed') {
      assert.ok(Date.now() < deadline, 'the prompt did not finish');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const result = await client.waitForPrompt('rh-q', {
      timeoutMs: 15_000,
      headers: { 'x-request-id': 'w-1' },
    });
    assert.ok(proxy.find('GET', '/history/rh-q').some((r) => r.headers['x-request-id'] === 'w-1'));
    assert.equal(
      proxy.find('POST', '/prompt').find((r) => postedPromptId(r) === 'rh-q')?.headers['x-request-id'],
      'q-1',
    );

    const entry = await client.getHistory('rh-q', { headers: { 'x-request-id': 'h-1' } });
    assert.ok(entry);
    assert.equal(proxy.find('GET', '/history/rh-q').at(-1)?.headers['x-request-id'], 'h-1');

    const file = result.outputs[0];
    assert.ok(file);
    const view = await client.view(file, { headers: { 'x-request-id': 'v-1' }, range: 'bytes=0-7' });
    const body = Buffer.from(await new Response(view.body as unknown as ReadableStream).arrayBuffer());
    assert.equal(body.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
    const viewed = proxy.find('GET', '/view').at(-1);
    assert.equal(viewed?.headers['x-request-id'], 'v-1');
    assert.equal(viewed?.headers.range, 'bytes=0-7');

    const before = proxy.find('GET', '/view').length;
    const chunks: Buffer[] = [];
    await client.downloadOutputs(
      result,
      async (_f, stream) => {
        for await (const c of stream) chunks.push(c as Buffer);
      },
      { headers: { 'x-request-id': 'dl-1' } },
    );
    const downloads = proxy.find('GET', '/view').slice(before);
    assert.equal(downloads.length, result.outputs.length);
    assert.ok(downloads.every((r) => r.headers['x-request-id'] === 'dl-1'));

    const png = Buffer.concat(chunks);
    const uploaded = await client.uploadImage(png, {
      filename: 'rh_upload.png',
      overwrite: true,
      headers: { 'x-request-id': 'up-1' },
    });
    assert.equal(uploaded.name, 'rh_upload.png');
    const upload = proxy.find('POST', '/upload/image').at(-1);
    assert.equal(upload?.headers['x-request-id'], 'up-1');
    assert.match(String(upload?.headers['content-type']), /^multipart\/form-data; boundary=/);

    // Case variants of one name are one header, in the constructor and per call: the last wins.
    const layered = new ComfyClient({
      baseUrl: proxy.url,
      headers: { 'X-Api-Key': 'one', 'x-api-key': 'two' },
    });
    try {
      await layered.getSystemStats({ headers: { 'X-Request-Id': 'stale', 'x-request-id': 's-1' } });
    } finally {
      await layered.close();
    }
    const stats = proxy.find('GET', '/system_stats').at(-1);
    assert.equal(stats?.headers['x-api-key'], 'two');
    assert.equal(stats?.headers['x-request-id'], 's-1');

    await client.interrupt('rh-nothing-running', { headers: { 'x-request-id': 'i-1' } });
    assert.equal(proxy.find('POST', '/interrupt').at(-1)?.headers['x-request-id'], 'i-1');
    await client.cancel('rh-unknown', { headers: { 'x-request-id': 'c-1' } });
    assert.equal(proxy.find('GET', '/queue').at(-1)?.headers['x-request-id'], 'c-1');
  });

  it('refuses malformed, reserved or duplicate per-call headers before sending anything', async () => {
    const sent = proxy.requests.length;
    const prompt = invertPrompt(freshColor(), 'rh_bad');
    const refused = async (headers: Record<string, string>, pattern: RegExp) => {
      await assert.rejects(client.run(prompt, { headers }), (err: unknown) => {
        assert.ok(err instanceof ComfyArgumentError, String(err));
        assert.equal(err.code, 'comfy_invalid_argument');
        assert.match(err.message, pattern);
        return true;
      });
    };
    await refused({ 'bad header': 'x' }, /invalid header name "bad header"/);
    await refused({ 'x-request-id': 'a\r\nx-injected: 1' }, /x-request-id has a control character/);
    await refused({ 'Content-Type': 'text/plain' }, /content-type is set by the client/);
    await refused({ Host: 'elsewhere' }, /host is set by the client/);
    await refused({ 'x-request-id': 'x'.repeat(9000) }, /longer than 8192/);
    // A secret-looking value is never echoed in the error.
    await assert.rejects(
      client.getHistory('rh-q', { headers: { authorization: 'Bearer s3cr3t\n' } }),
      (err) => {
        assert.ok(err instanceof ComfyArgumentError);
        assert.doesNotMatch(err.message, /s3cr3t/);
        return true;
      },
    );
    await assert.rejects(
      client.uploadImage(Buffer.from('x'), {
        filename: 'a.png',
        headers: { 'transfer-encoding': 'chunked' },
      }),
      ComfyArgumentError,
    );
    await assert.rejects(
      client.waitForPrompt('rh-q', { headers: { 'x-request-id': 1 as unknown as string } }),
      /must be a string/,
    );
    assert.equal(proxy.requests.length, sent, 'nothing reached the server');
    assert.equal(client.activeRuns, 0);
    assert.throws(
      () => new ComfyClient({ baseUrl: proxy.url, headers: { 'x-ok': 'fine', 'x-bad': 'a\nb' } }),
      ComfyArgumentError,
    );
  });

  it('validates a per-call map once: its own output passes as is, a caller object never does', () => {
    const map = callHeaders({ 'X-Request-Id': 'r-1' });
    assert.deepEqual({ ...map }, { 'x-request-id': 'r-1' });
    assert.deepEqual(Object.keys(map), ['x-request-id']);
    assert.ok(Object.isFrozen(map));
    // What a run hands to each of its calls: taken as is, not copied or checked again.
    assert.equal(callHeaders(map), map);
    // A caller's object is always checked, even frozen and already lower-case.
    assert.throws(() => callHeaders(Object.freeze({ 'x-bad': 'a\nb' })), ComfyArgumentError);
    const plain = { 'x-request-id': 'r-2' };
    assert.notEqual(callHeaders(plain), plain);
    // A client (constructor) map is not a valid per-call map: reserved names are refused per call.
    assert.throws(() => callHeaders(clientHeaders({ host: 'elsewhere' })), /host is set by the client/);
  });
});
