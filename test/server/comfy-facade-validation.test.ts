// POST /prompt validation through the facade against the recorded answers of a real ComfyUI v0.8.0:
// every validation_* recording is replayed and the status and body must be the recorded ones (the
// traceback's install paths aside). Also the shapes the recordings lack: a node with `inputs: null`
// or without `inputs`, an output node missing an input (its message in error.details), and
// partial_execution_targets.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { eventually, rawRequest } from '../facade-clients/helpers.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

const dir = new URL('../fixtures/comfyui-transcripts/', import.meta.url);

/** Tracebacks name the install's paths; keep only the function and code of each frame. */
function normalize(body: Json): Json {
  return JSON.parse(JSON.stringify(body), (key, value) => {
    if (key === 'traceback' && Array.isArray(value))
      return value.map((line: string) =>
        line
          .replace(/File "[^"]*execution\.py"/, 'File "execution.py"')
          .split('\n')
          .slice(0, 2)
          .join('\n'),
      );
    if (key === 'prompt_id' && typeof value === 'string') return '<id>';
    if (key === 'number' && typeof value === 'number') return '<n>';
    return value;
  });
}

describe('facade: POST /prompt validation answers like ComfyUI v0.8.0', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2 });
  });
  after(async () => {
    await stack.close();
  });

  const post = (body: unknown) =>
    rawRequest(`${stack.url}/prompt`, {
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  for (const file of readdirSync(dir).filter((f) => f.startsWith('validation_'))) {
    it(`answers ${file.replace('.json', '')} with the recorded status and body`, async () => {
      const scenario = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
      for (const e of scenario.events) {
        if (e.kind !== 'http' || e.request.method !== 'POST') continue;
        const res = await post(e.request.body_text);
        assert.equal(res.status, e.response.status, res.text);
        if (e.response.body_json === undefined) assert.equal(res.text, e.response.body_text);
        else assert.deepEqual(normalize(res.json), normalize(e.response.body_json));
      }
    });
  }

  it('answers a node with inputs null or missing with 400 exception_during_validation, not 500', async () => {
    for (const inputs of [{ inputs: null }, {}]) {
      const res = await post({
        prompt: {
          '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
          '2': { class_type: 'SaveImage', ...inputs },
        },
      });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json.error.type, 'prompt_outputs_failed_validation');
      const [error] = res.json.node_errors['2'].errors;
      assert.equal(error.type, 'exception_during_validation');
      assert.equal(error.extra_info.exception_type, 'inputs' in inputs ? 'TypeError' : 'KeyError');
      assert.equal(res.json.error.details, `Exception when validating node: ${error.details}`);
    }
    // An inner node without inputs is ComfyUI's exception_during_inner_validation on that node.
    const inner = await post({
      prompt: {
        '1': { class_type: 'ImageInvert' },
        '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'x' } },
      },
    });
    assert.equal(inner.status, 400);
    assert.equal(inner.json.node_errors['1'].errors[0].type, 'exception_during_inner_validation');
    assert.deepEqual(inner.json.node_errors['1'].dependent_outputs, ['2']);
  });

  it('names the output node’s own errors in error.details', async () => {
    const res = await post({
      prompt: { '2': { class_type: 'SaveImage', inputs: { filename_prefix: 'x' } } },
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.details, 'Required input is missing: images');
    assert.deepEqual(res.json.node_errors['2'].errors[0].extra_info, { input_name: 'images' });
  });

  it('validates only partial_execution_targets when given', async () => {
    const prompt = {
      '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'ok' } },
      '3': { class_type: 'SaveImage', inputs: { filename_prefix: 'broken' } },
    };
    const res = await post({ prompt, partial_execution_targets: ['2'] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.node_errors, {});
    const id = res.json.prompt_id;
    const entry = await eventually(async () => (await rawRequest(`${stack.url}/history/${id}`)).json[id]);
    assert.equal(entry.status.status_str, 'success');
    assert.deepEqual(entry.prompt[4], ['2'], 'outputs to execute');
    assert.deepEqual(Object.keys(entry.outputs), ['2']);
  });
});
