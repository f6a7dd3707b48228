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

function makeRun(history: Map<string, HistoryEntry>, pollIntervalMs: number): PromptRun {
  return new PromptRun(
    {
      baseUrl: 'http://test',
      pollIntervalMs,
      getHistory: async (id) => history.get(id),
      getQueuePosition: async () => 'running',
      cancel: async () => undefined,
      release: () => undefined,
    },
    { promptId: 'p', timeoutMs: 30_000, cancelOnAbort: false },
  );
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
});
