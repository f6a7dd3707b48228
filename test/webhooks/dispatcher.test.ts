// WebhookDispatcher against real HTTP receivers on loopback: signatures, retries, awaited failures,
// SSRF refusals, progress throttling, flush on shutdown, extra headers (request ids).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { WebhookDispatcher, WebhookHeaderError, type WebhookLogger } from '../../src/webhooks/index.ts';

const SECRET = `whsec_${Buffer.from('a test secret of 32 bytes long!!').toString('base64')}`;

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

async function receiver(
  handler: (req: Received, n: number, res: ServerResponse) => void,
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      handler(r, received.length, res);
      server.emit('received', r);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook?token=secret-token`, received, server };
}

const servers: Server[] = [];
const dispatchers: WebhookDispatcher[] = [];
after(async () => {
  for (const d of dispatchers) await d.close();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

function dispatcher(
  options: Partial<ConstructorParameters<typeof WebhookDispatcher>[0]> = {},
): WebhookDispatcher {
  const d = new WebhookDispatcher({
    secret: SECRET,
    allowPrivate: ['127.0.0.1'],
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    timeoutMs: 2_000,
    ...options,
  });
  dispatchers.push(d);
  return d;
}

describe('WebhookDispatcher', () => {
  test('signs deliveries so the standardwebhooks verifier accepts them', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(204).end());
    servers.push(r.server);
    const d = dispatcher();
    const job = { id: 'job-1', status: 'succeeded', outputs: [] };
    const delivery = await d.send('job-1', r.url, 'job.succeeded', job);
    assert.equal(delivery.status, 'delivered');
    assert.equal(delivery.attempts.length, 1);
    assert.equal(delivery.attempts[0]?.status_code, 204);
    const got = r.received[0];
    assert.ok(got);
    const verified = new Webhook(SECRET).verify(got.body, got.headers as Record<string, string>) as {
      type: string;
      data: unknown;
    };
    assert.equal(verified.type, 'job.succeeded');
    assert.deepEqual(verified.data, job);
    assert.equal(got.headers['webhook-id'], delivery.id);
    // A wrong secret must not verify: the signature really depends on the key.
    assert.throws(() =>
      new Webhook(`whsec_${Buffer.from('another secret').toString('base64')}`).verify(
        got.body,
        got.headers as Record<string, string>,
      ),
    );
    // The log never shows the query string (tokens).
    assert.ok(!delivery.url.includes('secret-token'));
  });

  test('retries with backoff until a receiver that fails twice accepts, keeping the same webhook-id', async () => {
    const r = await receiver((_req, n, res) => res.writeHead(n <= 2 ? 503 : 200).end());
    servers.push(r.server);
    const d = dispatcher();
    const delivery = await d.send('job-2', r.url, 'job.failed', { id: 'job-2', status: 'failed' });
    assert.equal(delivery.status, 'delivered');
    assert.deepEqual(
      delivery.attempts.map((a) => a.status_code),
      [503, 503, 200],
    );
    assert.equal(r.received.length, 3);
    assert.equal(new Set(r.received.map((x) => x.headers['webhook-id'])).size, 1);
    assert.deepEqual(
      d.deliveries('job-2').map((x) => x.status),
      ['delivered'],
    );
  });

  test('an error webhook that keeps failing resolves as failed after maxAttempts (awaitable, never rejects)', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(500).end('nope'));
    servers.push(r.server);
    const d = dispatcher({ maxAttempts: 3 });
    const delivery = await d.send('job-3', r.url, 'job.failed', { id: 'job-3' });
    assert.equal(delivery.status, 'failed');
    assert.equal(delivery.attempts.length, 3);
    assert.equal(r.received.length, 3);
    assert.match(delivery.error ?? '', /HTTP 500/);
  });

  test('stops at once on 410 Gone', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(410).end());
    servers.push(r.server);
    const d = dispatcher();
    const delivery = await d.send('job-4', r.url, 'job.canceled', { id: 'job-4' });
    assert.equal(delivery.status, 'failed');
    assert.equal(delivery.attempts.length, 1);
  });

  test('refuses loopback, metadata and names resolving to private addresses unless allow-listed', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(200).end());
    servers.push(r.server);
    const port = new URL(r.url).port;
    const d = dispatcher({
      allowPrivate: [],
      lookup: (_host, options, cb) =>
        options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    });
    for (const url of [
      r.url,
      'http://169.254.169.254/latest/meta-data',
      `http://hooks.internal.test:${port}/x`,
      'http://[::1]:9/x',
    ]) {
      const delivery = await d.send('job-5', url, 'job.succeeded', {});
      assert.equal(delivery.status, 'failed', url);
      assert.equal(delivery.attempts.length, 1, url);
      assert.match(delivery.error ?? '', /input_url_forbidden/, url);
    }
    assert.equal(r.received.length, 0);
    // Allow-listing the host name opens it, and the connection goes to the address that was checked.
    const allowed = dispatcher({
      allowPrivate: ['hooks.internal.test'],
      lookup: (_host, options, cb) =>
        options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    });
    const ok = await allowed.send('job-5', `http://hooks.internal.test:${port}/x`, 'job.succeeded', {});
    assert.equal(ok.status, 'delivered');
    assert.equal(r.received.length, 1);
  });

  test('throttles progress events and never retries them', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(500).end());
    servers.push(r.server);
    const d = dispatcher({ progressIntervalMs: 60_000 });
    const first = await d.send('job-6', r.url, 'job.progress', { value: 0.1 });
    const second = await d.send('job-6', r.url, 'job.progress', { value: 0.2 });
    assert.equal(first.status, 'failed');
    assert.equal(first.attempts.length, 1);
    assert.equal(second.status, 'skipped');
    assert.equal(r.received.length, 1);
  });

  test('flush(grace) stops retrying deliveries at shutdown, leaving them pending for the outbox', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(503).end());
    servers.push(r.server);
    const d = dispatcher({ initialBackoffMs: 60_000, maxBackoffMs: 60_000, maxDeliveriesPerJob: 2 });
    const pending = d.send('job-7', r.url, 'job.failed', {});
    if (r.received.length === 0) await once(r.server, 'received');
    const t0 = Date.now();
    await d.flush(50);
    const delivery = await pending;
    assert.ok(Date.now() - t0 < 5_000);
    assert.equal(delivery.status, 'pending');
    assert.match(delivery.error ?? '', /shutdown/);
    await d.send('job-7', r.url, 'job.progress', {});
    await d.send('job-7', 'http://127.0.0.1:1/', 'job.canceled', {});
    assert.equal(d.deliveries('job-7').length, 2);
  });

  test('a timed-out attempt is recorded and retried', async () => {
    let n = 0;
    const r = await receiver((_req, count, res) => {
      n = count;
      if (count === 1) return; // never answers: the attempt must time out
      res.writeHead(200).end();
    });
    servers.push(r.server);
    const d = dispatcher({ timeoutMs: 200 });
    const delivery = await d.send('job-8', r.url, 'job.succeeded', {});
    assert.equal(delivery.status, 'delivered');
    assert.equal(n, 2);
    assert.match(delivery.attempts[0]?.error ?? '', /timed out|abort/i);
  });
  test('sends extra headers (x-request-id) on every retry attempt; the signature still verifies', async () => {
    const r = await receiver((_req, n, res) => res.writeHead(n <= 2 ? 503 : 200).end());
    servers.push(r.server);
    const logged: unknown[] = [];
    const logger: WebhookLogger = {
      debug: (obj) => logged.push(obj),
      warn: (obj) => logged.push(obj),
      info: (obj) => logged.push(obj),
    };
    const d = dispatcher({ logger });
    const job = { id: 'job-9', status: 'succeeded' };
    const delivery = await d.send('job-9', r.url, 'job.succeeded', job, {
      // Case variants of one name are one header: the last wins.
      headers: { 'X-Request-Id': 'stale', 'x-request-id': 'req-9f2c', 'X-Trace-Token': 'tr4ce-s3cret' },
    });
    assert.equal(delivery.status, 'delivered');
    assert.equal(r.received.length, 3);
    for (const got of r.received) {
      assert.equal(got.headers['x-request-id'], 'req-9f2c');
      assert.equal(got.headers['x-trace-token'], 'tr4ce-s3cret');
      assert.equal(got.headers['content-type'], 'application/json');
      assert.equal(got.headers['webhook-id'], delivery.id);
      const verified = new Webhook(SECRET).verify(got.body, got.headers as Record<string, string>) as {
        data: unknown;
      };
      assert.deepEqual(verified.data, job);
    }
    // Neither the delivery log (served on GET /jobs/{id}) nor the logs keep header values.
    const recorded = JSON.stringify([delivery, d.deliveries('job-9'), logged]);
    assert.ok(logged.length > 0);
    assert.ok(!recorded.includes('tr4ce-s3cret'));
    assert.ok(!recorded.includes('req-9f2c'));
  });

  test('refuses extra headers that would replace signature, content or framing headers, or are malformed', async () => {
    const r = await receiver((_req, _n, res) => res.writeHead(200).end());
    servers.push(r.server);
    const d = dispatcher();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'Webhook-Signature': 'v1,forged' }, /webhook-signature is set by the dispatcher/],
      [{ 'webhook-id': 'msg_mine' }, /webhook-id is set by the dispatcher/],
      [{ 'Content-Type': 'text/plain' }, /content-type is set by the dispatcher/],
      [{ 'transfer-encoding': 'chunked' }, /transfer-encoding is set by the dispatcher/],
      [{ 'bad name': 'x' }, /invalid webhook header name "bad name"/],
      [{ 'x-request-id': 'a\r\nx-injected: s3cret' }, /x-request-id has a control character/],
    ];
    for (const [headers, pattern] of cases) {
      const delivery = await d.send('job-10', r.url, 'job.failed', {}, { headers });
      assert.equal(delivery.status, 'failed', JSON.stringify(headers));
      assert.equal(delivery.attempts.length, 0);
      assert.match(delivery.error ?? '', /^webhook_header_invalid: /);
      assert.match(delivery.error ?? '', pattern);
      assert.doesNotMatch(delivery.error ?? '', /s3cret|forged/);
      assert.throws(
        () => d.validateHeaders(headers),
        (err: unknown) => err instanceof WebhookHeaderError && err.code === 'webhook_header_invalid',
      );
    }
    assert.equal(r.received.length, 0);
    assert.equal(d.deliveries('job-10').length, cases.length);
    d.validateHeaders({ 'x-request-id': 'fine' });
  });
});
