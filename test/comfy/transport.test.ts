// HTTP transport edge cases against a raw loopback server: close() and caller aborts cancel a
// request the server never answers, retries stop on a caller abort, error bodies stay capped
// while 2xx bodies are read whole, and response headers are still readable (flattened lazily).
// Bodies are collected by the transport's own dispatch handler: a request still queued for a
// connection ends at its deadline or abort and is never sent, chunked and BOM-prefixed 2xx bodies
// decode as `body.text()` did, and a streamed request body is destroyed when the request fails.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ComfyClient } from '../../src/comfy/index.ts';
import { HttpTransport } from '../../src/comfy/http.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

describe('HTTP transport', () => {
  let server: Server;
  let url: string;
  /** A transport with one connection and no retries, against the test server. */
  const oneConnection = (requestTimeoutMs: number) =>
    new HttpTransport({
      baseUrl: url,
      requestTimeoutMs,
      connections: 1,
      retry: { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 10 },
    });
  let handler: Handler = () => undefined;
  const held = new Set<ServerResponse>();

  before(async () => {
    server = createServer((req, res) => handler(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** The server holds every request open; resolves on the first one it receives. */
  function holdRequests(): Promise<IncomingMessage> {
    return new Promise((resolve) => {
      handler = (req, res) => {
        held.add(res);
        resolve(req);
      };
    });
  }

  it('close() ends a request the server never answers with comfy_closed', { timeout: 10_000 }, async () => {
    const client = new ComfyClient({ baseUrl: url, requestTimeoutMs: 60_000 });
    const arrived = holdRequests();
    const pending = client.getQueue();
    const rejected = assert.rejects(pending, { code: 'comfy_closed' });
    await arrived;
    await client.close();
    await rejected;
    await client.close();
  });

  it('close() also ends a request that carries a caller signal', { timeout: 10_000 }, async () => {
    const client = new ComfyClient({ baseUrl: url, requestTimeoutMs: 60_000 });
    const caller = new AbortController();
    const arrived = holdRequests();
    const rejected = assert.rejects(client.getQueue({ signal: caller.signal }), { code: 'comfy_closed' });
    await arrived;
    await client.close();
    await rejected;
    assert.equal(caller.signal.aborted, false);
  });

  it('a caller abort ends the request with comfy_aborted and the client stays usable', {
    timeout: 10_000,
  }, async () => {
    const client = new ComfyClient({ baseUrl: url, requestTimeoutMs: 60_000 });
    try {
      const caller = new AbortController();
      const arrived = holdRequests();
      const rejected = assert.rejects(client.getQueue({ signal: caller.signal }), { code: 'comfy_aborted' });
      await arrived;
      caller.abort();
      await rejected;
      handler = (_req, res) => res.end(JSON.stringify({ queue_running: [], queue_pending: [] }));
      assert.deepEqual(await client.getQueue(), { running: [], pending: [] });
    } finally {
      await client.close();
    }
  });

  it('does not retry once the caller aborted during a failing attempt', { timeout: 10_000 }, async () => {
    const client = new ComfyClient({
      baseUrl: url,
      retry: { maxAttempts: 5, initialDelayMs: 50, maxDelayMs: 50 },
    });
    try {
      const caller = new AbortController();
      let requests = 0;
      handler = (_req, res) => {
        requests++;
        caller.abort();
        res.statusCode = 503;
        res.end('busy');
      };
      // The abort lands (same process) before the 503 is read: the attempt ends aborted, not retried.
      await assert.rejects(client.getQueue({ signal: caller.signal }), { code: 'comfy_aborted' });
      assert.equal(requests, 1);
    } finally {
      await client.close();
    }
  });

  it('keeps at most about 64 KiB of an error body and reads 2xx bodies whole', async () => {
    const transport = oneConnection(10_000);
    try {
      const big = 'x'.repeat(4 * 1024 * 1024);
      handler = (req, res) => {
        res.statusCode = req.url === '/missing' ? 404 : 200;
        res.setHeader('x-multi', ['a', 'b']);
        res.end(big);
      };
      const missing = await transport.send({ method: 'GET', path: '/missing' });
      assert.equal(missing.status, 404);
      assert.ok(
        missing.text.length >= 64 * 1024 && missing.text.length < 1024 * 1024,
        `${missing.text.length}`,
      );
      const ok = await transport.send({ method: 'GET', path: '/ok' });
      assert.equal(ok.status, 200);
      assert.equal(ok.text.length, big.length);
      assert.equal(ok.headers['x-multi'], 'a, b');
      assert.equal(ok.headers['content-length'], String(big.length));
    } finally {
      await transport.close();
    }
  });

  it('a request queued for a connection ends at its deadline or abort, and is never sent', {
    timeout: 10_000,
  }, async () => {
    const transport = oneConnection(60_000);
    try {
      const seen: string[] = [];
      handler = (req, res) => {
        seen.push(req.url ?? '');
        if (req.url === '/hold') held.add(res);
        else res.end('{}');
      };
      const caller = new AbortController();
      const holding = assert.rejects(
        transport.send({ method: 'GET', path: '/hold', signal: caller.signal }),
        {
          code: 'comfy_aborted',
        },
      );
      while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // The only connection is busy: these two wait in the pool's queue.
      const started = Date.now();
      await assert.rejects(transport.send({ method: 'GET', path: '/timed-out', timeoutMs: 50 }), {
        code: 'comfy_timeout',
      });
      assert.ok(Date.now() - started < 2_000, `${Date.now() - started} ms`);
      const queuedCaller = new AbortController();
      const queued = transport.send({ method: 'GET', path: '/aborted', signal: queuedCaller.signal });
      queuedCaller.abort();
      await assert.rejects(queued, { code: 'comfy_aborted' });
      caller.abort();
      await holding;
      const ok = await transport.json<Record<string, never>>({ method: 'GET', path: '/after' });
      assert.deepEqual(ok, {});
      assert.deepEqual(seen, ['/hold', '/after']);
    } finally {
      await transport.close();
    }
  });

  it('decodes a chunked 2xx body whole, dropping a UTF-8 BOM like body.text()', async () => {
    const transport = oneConnection(10_000);
    try {
      const json = Buffer.from(
        JSON.stringify({ name: 'café ☕', list: Array.from({ length: 2000 }, (_, i) => i) }),
      );
      handler = (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.write(Buffer.from([0xef, 0xbb, 0xbf]));
        // Split inside the multi-byte characters and across many writes.
        for (let i = 0; i < json.length; i += 7) res.write(json.subarray(i, i + 7));
        res.end();
      };
      const body = await transport.json<{ name: string; list: number[] }>({
        method: 'GET',
        path: '/chunked',
      });
      assert.equal(body.name, 'café ☕');
      assert.equal(body.list.length, 2000);
      handler = (_req, res) => res.end();
      const empty = await transport.send({ method: 'GET', path: '/empty' });
      assert.equal(empty.text, '');
    } finally {
      await transport.close();
    }
  });

  it('destroys a streamed request body when the request fails', { timeout: 10_000 }, async () => {
    const transport = oneConnection(10_000);
    try {
      handler = (req) => req.socket.destroy();
      // A body that never ends: only a destroy releases it.
      const body = new Readable({ read() {} });
      body.push('part of an upload');
      await assert.rejects(
        transport.send({ method: 'POST', path: '/upload', body, headers: { 'content-type': 'text/plain' } }),
        { code: 'comfy_connection' },
      );
      assert.equal(body.destroyed, true);
      // Also when the caller aborted before the request was dispatched at all.
      const early = new Readable({ read() {} });
      await assert.rejects(
        transport.send({
          method: 'POST',
          path: '/upload',
          makeBody: () => early,
          headers: { 'content-type': 'text/plain' },
          signal: AbortSignal.abort(),
        }),
        { code: 'comfy_aborted' },
      );
      assert.equal(early.destroyed, true);
    } finally {
      await transport.close();
    }
  });
});
