// Editor workflows above the in-place size convert on the gateway's worker threads, on every route
// that converts (v2 jobs, /prompt_sync, the facade's /prompt, inline pipelines), with the same
// results; a saturated pool answers 503 conversion_busy with Retry-After; the size refusal (422)
// still comes first.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nestedSubgraphWorkflow, uiInvertChain } from '../support/attack-workflows.ts';
import { startTestStack, type TestStack } from '../support/gateway.ts';

describe('conversion on worker threads', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ env: { CONVERT_WORKERS: '1', CONVERT_QUEUE: '1' } });
  });
  after(async () => {
    await stack.close();
  });

  it('converts a 600-node editor workflow off the event loop on every converting route', async () => {
    assert.equal(stack.gateway.converter.threads, 0, 'no thread before the first large workflow');
    const job = await stack.request('/api/v2/jobs?wait=60', {
      body: { workflow: uiInvertChain(600, 0, 'v2') },
    });
    assert.equal(job.body.status, 'succeeded', JSON.stringify(job.body.error));
    assert.equal(stack.gateway.converter.threads, 1, 'converted on a worker');
    assert.match(job.body.outputs[0].name, /^v2_/);

    const sync = await stack.request('/prompt_sync', { body: { prompt: uiInvertChain(600, 0, 'sync') } });
    assert.equal(sync.status, 200, JSON.stringify(sync.body));

    const facade = await stack.request('/prompt', { body: { prompt: uiInvertChain(600, 0, 'facade') } });
    assert.equal(facade.status, 200, JSON.stringify(facade.body));
    assert.equal(typeof facade.body.prompt_id, 'string');

    const run = await stack.request('/v1/pipeline-runs?wait=60', {
      body: { pipeline: { steps: [{ id: 'a', workflow: uiInvertChain(600, 0, 'pipe') }] } },
    });
    assert.equal(run.status, 201, JSON.stringify(run.body));
    assert.equal(run.body.status, 'succeeded', JSON.stringify(run.body.error));
  });

  it('still refuses an oversized workflow with 422 workflow_too_large before converting', async () => {
    const res = await stack.request('/api/v2/jobs', { body: { workflow: nestedSubgraphWorkflow(6) } });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'workflow_too_large');
    assert.equal(res.body.error.details.nodes, 1_111_112);
  });

  it('answers 503 conversion_busy with Retry-After while every worker and queue place is taken', async () => {
    const defs = await stack.gateway.pool.nodeDefsFor();
    const heavy = uiInvertChain(4000, 0);
    const text = JSON.stringify(heavy);
    // One conversion running and one waiting fill a pool of 1 worker and a queue of 1.
    const converter = stack.gateway.converter;
    const busy = [1, 2].map(() => converter.convert(heavy, defs as never, { source: { text, path: [] } }));
    const res = await stack.request('/api/v2/jobs', { body: { workflow: uiInvertChain(600, 0, 'busy') } });
    await Promise.all(busy);
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'conversion_busy');
    assert.equal(res.headers.get('retry-after'), '1');
    // Once they are done, the same request goes through.
    const again = await stack.request('/api/v2/jobs', { body: { workflow: uiInvertChain(600, 0, 'busy') } });
    assert.equal(again.status, 201, JSON.stringify(again.body));
  });

  it('stops its conversion workers when the gateway closes', async () => {
    assert.ok(stack.gateway.converter.threads >= 1);
    await stack.gateway.close();
    assert.equal(stack.gateway.converter.threads, 0);
  });
});
