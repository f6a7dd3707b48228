// Attack 5 of issue 12: ~4,400 levels of nesting in a 9 KB body overflowed the stack in
// JSON.stringify and answered 500 upstream_error. Now: 400 json_too_deep before any recursive
// work; and a local fault is `internal_error`, never `upstream_error`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ComfyServerError } from '../../src/comfy/index.ts';
import { renderError } from '../../src/server/errors.ts';
import { exceedsDepth } from '../../src/server/json-depth.ts';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';
import { deepJson, healthLatency } from './support.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(async () => {
  await stack.close();
});

const DEEP = 5000;

function post(path: string, body: string) {
  return stack.request(path, { body, headers: { 'content-type': 'application/json' } });
}

test('deep metadata is refused with 400 json_too_deep naming the limit', async () => {
  const body = `{"workflow": ${JSON.stringify(invertPrompt())}, "metadata": {"a": ${deepJson(DEEP)}}}`;
  const res = await post('/api/v2/jobs', body);
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'json_too_deep');
  assert.equal(res.body.error.details.max_depth, 64);
});

test('a deep node input is refused with 400 on every JSON route', async () => {
  const prompt = JSON.stringify(invertPrompt()).replace('"batch_size":1', `"batch_size":${deepJson(DEEP)}`);
  for (const [path, body] of [
    ['/api/v2/jobs', `{"workflow": ${prompt}}`],
    ['/prompt_sync', `{"prompt": ${prompt}}`],
    ['/prompt', `{"prompt": ${prompt}}`],
    ['/api/prompt', `{"prompt": ${prompt}}`],
  ] as const) {
    const res = await post(path, body);
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
  }
  assert.ok((await healthLatency(stack.url)) < 1000);
});

test('nesting at the limit is still accepted', async () => {
  // metadata sits at depth 2 of the body: 62 more levels reach 64.
  const body = `{"workflow": ${JSON.stringify(invertPrompt())}, "metadata": {"a": ${deepJson(62)}}}`;
  const res = await post('/api/v2/jobs', body);
  assert.equal(res.status, 201, JSON.stringify(res.body));
});

test('an unknown local error renders as 500 internal_error, never upstream_error', () => {
  const rendered = renderError(new RangeError('Maximum call stack size exceeded'));
  assert.equal(rendered.status, 500);
  assert.equal(rendered.code, 'internal_error');
  assert.equal(renderError(new ComfyServerError('x', 500, 'Traceback…')).code, 'upstream_error');
});

test('the depth check counts objects and arrays alike, down every branch, exactly to the limit', () => {
  // Alternating arrays and objects, the deep branch last among flat siblings.
  const nest = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [0, 'y', v] : { a: 'x', b: null, c: v };
    return v;
  };
  for (const limit of [1, 2, 8, 64]) {
    assert.equal(exceedsDepth(nest(limit), limit), false, `${limit} levels within ${limit}`);
    assert.equal(exceedsDepth(nest(limit + 1), limit), true, `${limit + 1} levels past ${limit}`);
  }
  assert.equal(exceedsDepth('text', 1), false);
  assert.equal(exceedsDepth({}, 1), false);
});
