// Failure handling of ComfyClient.run() under injected faults: socket drops, server crash and
// restart, node errors, interrupts, prompts that never start or hang, deadlines, aborts, slow
// history and transient HTTP errors.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  ComfyAbortError,
  ComfyClient,
  ComfyConnectionError,
  ComfyExecutionError,
  ComfyInterruptedError,
  ComfyServerError,
  ComfyTimeoutError,
  type RunEvent,
} from '../../src/comfy/index.ts';
import { type SimulatedComfyUI, type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { eventually, freshColor, invertPrompt } from './helpers.ts';

/** Resolves when `onEvent` sees an event of `type`. */
function eventLatch(type: RunEvent['type']): { onEvent: (e: RunEvent) => void; seen: Promise<RunEvent> } {
  let resolve!: (e: RunEvent) => void;
  const seen = new Promise<RunEvent>((r) => {
    resolve = r;
  });
  return { onEvent: (e) => e.type === type && resolve(e), seen };
}

describe('ComfyClient under faults', () => {
  let sim: Simulator;
  let comfy: SimulatedComfyUI;
  let client: ComfyClient;

  before(async () => {
    sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    comfy = sim.instances[0]!;
    client = new ComfyClient({
      baseUrl: comfy.url,
      historyPollIntervalMs: 100,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 20 },
      retry: { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100 },
    });
  });
  afterEach(async () => {
    comfy.clearFaults();
    assert.equal(client.activeRuns, 0, 'a run outlived its test');
  });
  after(async () => {
    await client.close();
    await sim.close();
  });

  it('completes a run whose WebSocket drops mid-run, and reconnects with the same client id', async () => {
    comfy.setFaults({ dropWebSocketAtNode: '2', nodeDelayMs: 30 });
    const reconnected = new Promise<void>((r) => client.once('reconnect', () => r()));
    const result = await client.run(invertPrompt(freshColor(), 'cc_drop'), { timeoutMs: 10_000 });
    assert.match(result.outputs[0]?.filename ?? '', /^cc_drop_/);
    await reconnected;
    assert.equal(client.state, 'open');
    // The reconnected socket still receives this client's events.
    comfy.clearFaults();
    const events: RunEvent[] = [];
    await client.run(invertPrompt(freshColor()), { onEvent: (e) => events.push(e) });
    assert.ok(events.some((e) => e.type === 'executing'));
  });

  it('fails with a retryable comfy_connection error when the server restarts mid-run', async () => {
    comfy.setFaults({ hang: true });
    const latch = eventLatch('started');
    const t0 = Date.now();
    const run = client.run(invertPrompt(freshColor()), { onEvent: latch.onEvent, timeoutMs: 20_000 });
    const rejected = assert.rejects(run, (err: unknown) => {
      assert.ok(err instanceof ComfyConnectionError, String(err));
      assert.equal(err.retryable, true);
      assert.match(err.message, /vanished|lost contact/);
      return true;
    });
    await latch.seen;
    await comfy.crash();
    await comfy.restart();
    await rejected;
    assert.ok(Date.now() - t0 < 10_000, 'detected well before the deadline');
  });

  it('fails with comfy_connection when the server dies and stays down', async () => {
    const local = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
    const c = new ComfyClient({
      baseUrl: local.instances[0]!.url,
      historyPollIntervalMs: 100,
      reconnect: { initialDelayMs: 20, maxDelayMs: 50, maxAttempts: 3 },
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
    });
    try {
      local.instances[0]!.setFaults({ hang: true });
      const latch = eventLatch('started');
      const run = c.run(invertPrompt(freshColor()), { onEvent: latch.onEvent, timeoutMs: 20_000 });
      const rejected = assert.rejects(run, { code: 'comfy_connection', retryable: true });
      await latch.seen;
      await local.instances[0]!.crash();
      await rejected;
      await assert.rejects(c.getQueue(), { code: 'comfy_connection', notSent: true });
    } finally {
      await c.close();
      await local.close();
    }
  });

  it('reports a node failure with its node id, type and traceback', async () => {
    comfy.setFaults({ failAtNode: '2' });
    await assert.rejects(client.run(invertPrompt(freshColor())), (err: unknown) => {
      assert.ok(err instanceof ComfyExecutionError, String(err));
      assert.equal(err.code, 'comfy_execution');
      assert.equal(err.retryable, false);
      assert.equal(err.nodeId, '2');
      assert.equal(err.nodeType, 'ImageInvert');
      assert.ok(err.exceptionType.length > 0);
      assert.ok(Array.isArray(err.traceback));
      assert.ok(err.promptId);
      return true;
    });
  });

  it('reports an interrupted prompt as comfy_interrupted', async () => {
    comfy.setFaults({ hang: true });
    const latch = eventLatch('started');
    const run = client.run(invertPrompt(freshColor()), { onEvent: latch.onEvent });
    const rejected = assert.rejects(run, ComfyInterruptedError);
    const started = await latch.seen;
    await client.interrupt(started.promptId);
    await rejected;
  });

  it('bounds a prompt that is accepted but never starts, and removes it from the queue', async () => {
    comfy.setFaults({ neverStart: true });
    const t0 = Date.now();
    let promptId = '';
    await assert.rejects(
      client.run(invertPrompt(freshColor()), {
        timeoutMs: 300,
        onEvent: (e) => {
          promptId = e.promptId;
        },
      }),
      (err: unknown) => err instanceof ComfyTimeoutError && err.code === 'comfy_timeout',
    );
    assert.ok(Date.now() - t0 < 3000);
    const queue = await client.getQueue();
    assert.ok(promptId !== '');
    assert.ok(!queue.pending.some((i) => i.promptId === promptId), 'the pending prompt was deleted');
  });

  it('interrupts a running prompt on the server when its deadline passes', async () => {
    comfy.setFaults({ hang: true });
    let promptId = '';
    await assert.rejects(
      client.run(invertPrompt(freshColor()), {
        timeoutMs: 300,
        onEvent: (e) => {
          promptId = e.promptId;
        },
      }),
      ComfyTimeoutError,
    );
    await eventually(
      async () => (await client.getQueue()).running.length === 0,
      3000,
      'the running prompt to stop',
    );
    assert.notEqual(await client.getPromptState(promptId), 'running');
  });

  it('aborts on the caller’s signal and deletes the pending prompt', async () => {
    comfy.setFaults({ neverStart: true });
    const controller = new AbortController();
    const latch = eventLatch('queued');
    const run = client.run(invertPrompt(freshColor()), { signal: controller.signal, onEvent: latch.onEvent });
    const rejected = assert.rejects(run, ComfyAbortError);
    const queued = await latch.seen;
    controller.abort();
    await rejected;
    const queue = await client.getQueue();
    assert.ok(!queue.pending.some((i) => i.promptId === queued.promptId));
  });

  it('rejects at once for an already-aborted signal', async () => {
    await assert.rejects(
      client.run(invertPrompt(freshColor()), { signal: AbortSignal.abort() }),
      (err: unknown) => err instanceof ComfyAbortError || err instanceof ComfyTimeoutError,
    );
  });

  it('completes despite slow history', async () => {
    comfy.setFaults({ historyDelayMs: 300 });
    const result = await client.run(invertPrompt(freshColor(), 'cc_slowhist'), { timeoutMs: 10_000 });
    assert.match(result.outputs[0]?.filename ?? '', /^cc_slowhist_/);
  });

  it('retries transient 5xx on idempotent calls but never resubmits a prompt', async () => {
    comfy.setFaults({ httpFailures: [{ path: '/queue', status: 503, times: 2 }] });
    assert.deepEqual(await client.getQueue(), { running: [], pending: [] });
    const executed = comfy.stats.promptsExecuted;
    comfy.setFaults({ httpFailures: [{ path: '/prompt', status: 503, times: 1 }] });
    await assert.rejects(client.queuePrompt(invertPrompt(freshColor())), (err: unknown) => {
      assert.ok(err instanceof ComfyServerError);
      assert.equal(err.status, 503);
      assert.equal(err.retryable, true);
      return true;
    });
    assert.equal(comfy.stats.promptsExecuted, executed);
    // The failure was used up by that single attempt: the next submission goes through.
    const result = await client.run(invertPrompt(freshColor()));
    assert.equal(result.outputs.length, 1);
  });

  it('times out a single HTTP call that gets no answer', async () => {
    const c = new ComfyClient({ baseUrl: comfy.url, requestTimeoutMs: 100, retry: { maxAttempts: 1 } });
    try {
      comfy.setFaults({ httpDelayMs: 1000 });
      await assert.rejects(c.getSystemStats(), { code: 'comfy_timeout' });
    } finally {
      comfy.clearFaults();
      await c.close();
    }
  });
});
