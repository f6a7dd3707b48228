import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';

const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
let stack: TestStack;
const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
let servedPng: Buffer | null = null;
const hook = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/cat.png' && servedPng) {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': servedPng.length }).end(servedPng);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    hook.emit('delivery');
    res.writeHead(204).end();
  });
});

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

test('output.store inline returns the bytes as base64 in the job', async () => {
  const res = await stack.request('/api/v2/jobs?wait=10', {
    body: { workflow: invertPrompt('inline'), output: { store: 'inline' } },
  });
  assert.equal(res.body.status, 'succeeded', JSON.stringify(res.body.error));
  const out = res.body.outputs[0];
  const png = Buffer.from(out.data_base64, 'base64');
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.equal(out.size_bytes, png.length);
  // The content link still works for delivered outputs.
  const viaLink = Buffer.from(await (await fetch(out.url)).arrayBuffer());
  assert.deepEqual(viaLink, png);
  servedPng = png;
});

test('a URL input is fetched, uploaded to the instance and used by LoadImage', async () => {
  assert.ok(servedPng, 'the inline test ran first');
  const port = (hook.address() as { port: number }).port;
  const workflow = {
    '1': { class_type: 'LoadImage', inputs: { image: 'cat' } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'fromurl' } },
  };
  const res = await stack.request('/api/v2/jobs?wait=10', {
    body: {
      workflow,
      inputs: { '1.image': `http://127.0.0.1:${port}/cat.png` },
      output: { store: 'inline' },
    },
  });
  assert.equal(res.body.status, 'succeeded', JSON.stringify(res.body.error));
  const direct = await stack.request('/api/v2/jobs?wait=10', {
    body: {
      workflow: {
        ...workflow,
        '1': { class_type: 'LoadImage', inputs: { image: `http://127.0.0.1:${port}/cat.png` } },
      },
    },
  });
  assert.equal(direct.body.status, 'succeeded', JSON.stringify(direct.body.error));
  assert.ok(res.body.outputs[0].data_base64.length > 0);
  const badKey = await stack.request('/api/v2/jobs', {
    body: { workflow, inputs: { cat: 'http://x/y.png' } },
  });
  assert.equal(badKey.status, 400);
  assert.match(badKey.body.error.message, /node_id/);
});

test('webhook_url gets a signed job.succeeded delivery with the job', async () => {
  const port = (hook.address() as { port: number }).port;
  const delivered = once(hook, 'delivery');
  const res = await stack.request('/api/v2/jobs', {
    body: {
      workflow: invertPrompt('hook'),
      webhook_url: `http://127.0.0.1:${port}/hook`,
      metadata: 'order-7',
    },
  });
  await Promise.race([
    delivered,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no webhook in 10 s')), 10_000).unref()),
  ]);
  const delivery = received.at(-1);
  assert.ok(delivery);
  const payload = new Webhook(SECRET).verify(delivery.body, {
    'webhook-id': String(delivery.headers['webhook-id']),
    'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
    'webhook-signature': String(delivery.headers['webhook-signature']),
  }) as { type?: string; data?: { id?: string; status?: string; metadata?: string } };
  const body = JSON.stringify(payload);
  assert.match(body, new RegExp(res.body.id));
  assert.match(body, /succeeded/);
  assert.match(body, /order-7/);
});
