// A run that asks for a webhook gets one signed delivery when it ends (Standard Webhooks, the job
// webhooks' signer), with the run's outcome; its step jobs send none of their own.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { after, before, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

const SECRET = `whsec_${Buffer.from('pipeline-webhook-secret').toString('base64')}`;
const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
const hook = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    hook.emit('delivery');
    res.writeHead(204).end();
  });
});
let stack: TestStack;

before(async () => {
  hook.listen(0, '127.0.0.1');
  await once(hook, 'listening');
  stack = await startTestStack({ env: { ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1', WEBHOOK_SECRET: SECRET } });
});
after(async () => {
  await stack.close();
  hook.close();
  hook.closeAllConnections();
});

const SOLID = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 7 } },
  '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'hook' } },
};

async function delivered(runId: string): Promise<Json> {
  const signal = AbortSignal.timeout(15_000);
  for (;;) {
    const found = received.find((r) => r.body.includes(runId));
    if (found)
      return new Webhook(SECRET).verify(found.body, {
        'webhook-id': String(found.headers['webhook-id']),
        'webhook-timestamp': String(found.headers['webhook-timestamp']),
        'webhook-signature': String(found.headers['webhook-signature']),
      });
    await once(hook, 'delivery', { signal });
  }
}

test('a run with webhook_url gets one signed pipeline.succeeded delivery with its outputs', async () => {
  const port = (hook.address() as { port: number }).port;
  const res = await stack.request('/v1/pipeline-runs', {
    body: {
      pipeline: {
        steps: [
          { id: 'a', workflow: SOLID },
          { id: 'b', workflow: SOLID },
        ],
        outputs: { n: `\${{ steps.b.iterations }}` },
      },
      webhook_url: `http://127.0.0.1:${port}/hook`,
      metadata: { order: 7 },
    },
  });
  assert.equal(res.status, 201);
  const payload = await delivered(res.body.id);
  assert.equal(payload.type, 'pipeline.succeeded');
  assert.equal(payload.data.id, res.body.id);
  assert.equal(payload.data.status, 'succeeded');
  assert.deepEqual(payload.data.outputs, { n: 1 });
  assert.deepEqual(payload.data.metadata, { order: 7 });
  assert.equal(received.filter((r) => r.body.includes(res.body.id)).length, 1, 'one delivery for the run');
});

test('a failed run is delivered as pipeline.failed with its error context', async () => {
  const port = (hook.address() as { port: number }).port;
  const res = await stack.request('/v1/pipeline-runs', {
    body: {
      pipeline: {
        steps: [
          { id: 'broken', workflow: { '1': { class_type: 'LoadImage', inputs: { image: 'nope.png' } } } },
        ],
      },
      webhook_url: `http://127.0.0.1:${port}/hook`,
    },
  });
  assert.equal(res.status, 201);
  const payload = await delivered(res.body.id);
  assert.equal(payload.type, 'pipeline.failed');
  assert.equal(payload.data.error.step, 'broken');
  assert.equal(payload.data.error.iteration, 1);
});
