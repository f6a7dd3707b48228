// PromptRun's completion logic driven message by message (the real class, with the HTTP lookups
// answered in-process): event orderings the simulator does not always produce.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ComfyExecutionError, type HistoryEntry } from '../../src/comfy/index.ts';
import { PromptRun } from '../../src/comfy/prompt-run.ts';

function entry(id: string): HistoryEntry {
  return {
    prompt: [1, id, {}, {}, ['2']],
    outputs: { '2': { images: [{ filename: 'x.png', subfolder: '', type: 'output' }] } },
    status: { status_str: 'success', completed: true, messages: [] },
  };
}

function makeRun(
  history: Map<string, HistoryEntry>,
  pollIntervalMs: number,
  opts: { eventOutputsComplete?: boolean; historyReads?: { n: number } } = {},
): PromptRun {
  return new PromptRun(
    {
      baseUrl: 'http://test',
      pollIntervalMs,
      getHistory: async (id) => {
        if (opts.historyReads) opts.historyReads.n++;
        return history.get(id);
      },
      getQueuePosition: async () => 'running',
      cancel: async () => undefined,
      release: () => undefined,
      ...(opts.eventOutputsComplete !== undefined
        ? { eventOutputsComplete: () => opts.eventOutputsComplete as boolean }
        : {}),
    },
    { promptId: 'p', timeoutMs: 30_000, cancelOnAbort: false },
  );
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

/** The messages of a whole successful run whose output node 2 saved `file`. */
function wholeRun(run: PromptRun, file: string): void {
  run.handleMessage({ type: 'execution_start', data: { prompt_id: 'p' } });
  run.handleMessage({ type: 'execution_cached', data: { nodes: ['1'], prompt_id: 'p' } });
  run.handleMessage({ type: 'executing', data: { node: '2', prompt_id: 'p' } });
  run.handleMessage({
    type: 'executed',
    data: {
      node: '2',
      output: { images: [{ filename: 'old.png', subfolder: '', type: 'temp' }] },
      prompt_id: 'p',
    },
  });
  run.handleMessage({
    type: 'executed',
    data: {
      node: '2',
      output: { images: [{ filename: file, subfolder: 's', type: 'output' }] },
      prompt_id: 'p',
    },
  });
  // ComfyUI sends `output: None` for a cached node without UI output.
  run.handleMessage({
    type: 'executed',
    data: { node: '1', output: null as unknown as Record<string, unknown>, prompt_id: 'p' },
  });
  run.handleMessage({ type: 'execution_success', data: { prompt_id: 'p' } });
  run.handleMessage({ type: 'executing', data: { node: null, prompt_id: 'p' } });
}

describe('PromptRun', () => {
  it('finishes at once when `executing null` arrives before the POST answer', async () => {
    const history = new Map([['p', entry('p')]]);
    const run = makeRun(history, 20_000);
    const t0 = Date.now();
    run.handleMessage({ type: 'execution_start', data: { prompt_id: 'p' } });
    run.handleMessage({ type: 'execution_success', data: { prompt_id: 'p' } });
    run.handleMessage({ type: 'executing', data: { node: null, prompt_id: 'p' } });
    // The answer to POST /prompt lands after the events: it must not push the history read out.
    run.accepted({ number: 1 });
    const result = await run.result;
    assert.equal(result.outputs[0]?.filename, 'x.png');
    assert.ok(Date.now() - t0 < 5_000, 'did not wait for the 20 s poll interval');
  });

  it('treats ExecutionBlocked as non-terminal and a real execution_error as terminal', async () => {
    const history = new Map<string, HistoryEntry>();
    const run = makeRun(history, 20_000);
    run.accepted({ number: 1 });
    run.handleMessage({
      type: 'execution_error',
      data: {
        prompt_id: 'p',
        node_id: '3',
        node_type: 'X',
        exception_type: 'ExecutionBlocked',
        exception_message: 'blocked',
        traceback: [],
      },
    });
    history.set('p', entry('p'));
    run.handleMessage({ type: 'executing', data: { node: null, prompt_id: 'p' } });
    assert.equal((await run.result).promptId, 'p');

    const failing = makeRun(new Map(), 20_000);
    failing.accepted({ number: 2 });
    failing.handleMessage({
      type: 'execution_error',
      data: {
        prompt_id: 'p',
        node_id: '4',
        node_type: 'LoadImage',
        exception_type: 'PIL.UnidentifiedImageError',
        exception_message: 'cannot identify image file',
        traceback: ['line'],
      },
    });
    await assert.rejects(failing.result, (err: unknown) => {
      assert.ok(err instanceof ComfyExecutionError);
      assert.equal(err.nodeId, '4');
      assert.deepEqual(err.traceback, ['line']);
      return true;
    });
  });

  it('takes the outputs from `executed` messages when the socket saw the whole run, without reading history', async () => {
    const historyReads = { n: 0 };
    const run = makeRun(new Map(), 20_000, { eventOutputsComplete: true, historyReads });
    run.accepted({ number: 1 });
    wholeRun(run, 'y.png');
    const result = await run.result;
    assert.equal(historyReads.n, 0);
    // A node's last UI output counts, as in history; a null output is no entry.
    assert.deepEqual(result.rawOutputs, {
      '2': { images: [{ filename: 'y.png', subfolder: 's', type: 'output' }] },
    });
    assert.deepEqual(
      result.outputs.map((o) => [o.nodeId, o.filename, o.subfolder, o.type, o.kind]),
      [['2', 'y.png', 's', 'output', 'image']],
    );
    assert.deepEqual(result.stats.cachedNodes, ['1']);
    assert.equal(typeof result.stats.executionMs, 'number');
  });

  it('reads history instead when the server does not report every output over the socket, or the socket dropped mid-run', async () => {
    for (const variant of ['server', 'drop'] as const) {
      const historyReads = { n: 0 };
      const run = makeRun(new Map([['p', entry('p')]]), 20_000, {
        eventOutputsComplete: variant === 'drop',
        historyReads,
      });
      run.accepted({ number: 1 });
      run.handleMessage({ type: 'execution_start', data: { prompt_id: 'p' } });
      if (variant === 'drop') run.reconcile();
      run.handleMessage({ type: 'execution_success', data: { prompt_id: 'p' } });
      run.handleMessage({ type: 'executing', data: { node: null, prompt_id: 'p' } });
      const result = await run.result;
      assert.ok(historyReads.n >= 1, variant);
      assert.equal(result.outputs[0]?.filename, 'x.png', variant);
    }
    // Attached after `execution_start` went by: the events are not the whole run.
    const historyReads = { n: 0 };
    const late = makeRun(new Map([['p', entry('p')]]), 20_000, { eventOutputsComplete: true, historyReads });
    late.attach();
    late.handleMessage({ type: 'execution_success', data: { prompt_id: 'p' } });
    late.handleMessage({ type: 'executing', data: { node: null, prompt_id: 'p' } });
    assert.equal((await late.result).outputs[0]?.filename, 'x.png');
    assert.ok(historyReads.n >= 1);
  });

  it('a run that finishes before its POST /prompt answer waits for it and keeps its node_errors', async () => {
    for (const source of ['history', 'events'] as const) {
      const run = makeRun(new Map([['p', entry('p')]]), 20_000, {
        eventOutputsComplete: source === 'events',
      });
      let settled = false;
      void run.result.then(() => {
        settled = true;
      });
      wholeRun(run, 'x.png');
      await tick();
      assert.equal(settled, false, `${source}: waits for the POST answer`);
      const nodeErrors = { '9': { errors: [{ type: 'required_input_missing' }] } };
      run.accepted({ number: 1, nodeErrors });
      const result = await run.result;
      assert.deepEqual(result.nodeErrors, nodeErrors, source);
      assert.equal(result.outputs[0]?.filename, 'x.png', source);
    }
    // The POST failed after the prompt was seen finishing: it ran, so the run has its result.
    const run = makeRun(new Map([['p', entry('p')]]), 20_000, { eventOutputsComplete: true });
    wholeRun(run, 'z.png');
    await tick();
    run.fail(new Error('socket hang up'));
    assert.equal((await run.result).outputs[0]?.filename, 'z.png');
  });
});
