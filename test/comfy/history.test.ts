// Reading outputs, outcomes and timings from the recorded v0.8.0 history entries.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  historyOutcome,
  historyTimes,
  parseHistoryResponse,
  parseQueueItem,
} from '../../src/comfy/history.ts';
import { collectOutputs, outputKind, sortNodeIds } from '../../src/comfy/index.ts';
import { readJson, TRANSCRIPTS_DIR } from '../support/shared.ts';

interface Exchange {
  kind: string;
  request?: { method: string; path: string };
  response?: { status: number; body_json?: unknown };
}

function historyAnswer(file: string): { id: string; body: unknown } {
  const events = readJson<{ events: Exchange[] }>(join(TRANSCRIPTS_DIR, file)).events;
  const e = events.find(
    (x) => x.kind === 'http' && x.request?.path.startsWith('/history/') && x.response?.status === 200,
  );
  assert.ok(e?.request && e.response, `${file} has no /history/{id}`);
  return { id: e.request.path.slice('/history/'.length), body: e.response.body_json };
}

describe('history parsing', () => {
  it('reads the output file, status and timings of a successful run', () => {
    const { id, body } = historyAnswer('prompt_success_invert.json');
    const entry = parseHistoryResponse(body, id);
    assert.ok(entry);
    assert.deepEqual(historyOutcome(entry), { kind: 'success' });
    const { files, texts } = collectOutputs(entry.outputs);
    assert.deepEqual(files, [
      {
        nodeId: '3',
        kind: 'image',
        filename: 'gw_invert_00001_.png',
        subfolder: '',
        type: 'output',
        key: 'images',
      },
    ]);
    assert.deepEqual(texts, []);
    const times = historyTimes(entry);
    assert.equal(times.startedAt, 1795417034820);
    assert.equal(times.finishedAt, 1795417034847);
    assert.equal(times.createdAt, 1795417034819);
    assert.deepEqual(times.cachedNodes, []);
  });

  it('reports the node error of a failed run and keeps the outputs that were produced', () => {
    const { id, body } = historyAnswer('execution_error_broken_image.json');
    const entry = parseHistoryResponse(body, id);
    assert.ok(entry);
    const outcome = historyOutcome(entry);
    assert.equal(outcome.kind, 'error');
    assert.ok(outcome.kind === 'error');
    assert.equal(outcome.data.node_id, '1');
    assert.equal(outcome.data.exception_type, 'PIL.UnidentifiedImageError');
    assert.equal(collectOutputs(entry.outputs).files[0]?.type, 'temp');
  });

  it('reports an interrupted run as interrupted', () => {
    const events = readJson<{ events: Exchange[] }>(join(TRANSCRIPTS_DIR, 'interrupt_running.json')).events;
    const answers = events.filter(
      (x) => x.kind === 'http' && x.request?.path.startsWith('/history/') && x.response?.status === 200,
    );
    const outcomes = answers.map((a) => {
      const id = a.request!.path.slice('/history/'.length);
      const entry = parseHistoryResponse(a.response!.body_json, id);
      return entry ? historyOutcome(entry).kind : 'missing';
    });
    assert.ok(outcomes.includes('interrupted'), JSON.stringify(outcomes));
  });

  it('lists every file of a multi-output batch in node order', () => {
    const { id, body } = historyAnswer('prompt_multi_output_batch.json');
    const entry = parseHistoryResponse(body, id);
    assert.ok(entry);
    const { files } = collectOutputs(entry.outputs);
    assert.ok(files.length >= 3, JSON.stringify(files));
    const nodeOrder = files.map((f) => f.nodeId);
    assert.deepEqual(nodeOrder, sortNodeIds(nodeOrder));
    assert.ok(
      files.some((f) => f.subfolder !== ''),
      'a subfolder was recorded',
    );
  });

  it('returns undefined for unknown prompts and malformed answers', () => {
    assert.equal(parseHistoryResponse({}, 'x'), undefined);
    assert.equal(parseHistoryResponse([], 'x'), undefined);
    assert.equal(parseHistoryResponse({ x: { outputs: 'no' } }, 'x'), undefined);
  });

  it('classifies outputs and texts', () => {
    assert.equal(outputKind('a.png', 'images'), 'image');
    assert.equal(outputKind('a.mp4', 'images'), 'video');
    assert.equal(outputKind('a.webp', 'gifs'), 'video');
    assert.equal(outputKind('a.flac', 'audio'), 'audio');
    assert.equal(outputKind('mesh.glb', '3d'), 'file');
    const { files, texts } = collectOutputs({
      '10': { text: ['hello'], animated: [false] },
      '2': { audio: [{ filename: 'a.wav', subfolder: 's', type: 'output' }] },
    });
    assert.deepEqual(texts, [{ nodeId: '10', text: 'hello' }]);
    assert.deepEqual(
      files.map((f) => [f.nodeId, f.kind]),
      [['2', 'audio']],
    );
    assert.deepEqual(sortNodeIds(['10', '2', '10:3', '1']), ['1', '2', '10', '10:3']);
  });

  it('sorts node ids exactly as localeCompare(en, numeric) does', () => {
    const nodeId = fc.oneof(
      fc.nat({ max: 200 }).map(String),
      fc.tuple(fc.nat({ max: 200 }), fc.nat({ max: 30 })).map(([a, b]) => `${a}:${b}`),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(nodeId, { maxLength: 30 }), (ids) => {
        const expected = [...ids].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
        assert.deepEqual(sortNodeIds(ids), expected);
      }),
    );
  });

  it('decodes queue tuples and rejects malformed ones', () => {
    assert.deepEqual(
      parseQueueItem([3, 'p', { '1': { class_type: 'X', inputs: {} } }, { client_id: 'c' }, ['1']]),
      {
        number: 3,
        promptId: 'p',
        prompt: { '1': { class_type: 'X', inputs: {} } },
        extraData: { client_id: 'c' },
        outputsToExecute: ['1'],
      },
    );
    assert.equal(parseQueueItem(['x']), undefined);
    assert.equal(parseQueueItem({}), undefined);
  });
});
