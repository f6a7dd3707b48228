// A loopback HTTP server serving large deterministic files (generated block by block, never held
// whole) with Range support, for model download tests. Query knobs per request:
// `?drop=N` (the first response for this path ends the socket after N bytes), `?rate=B` (bytes
// per second), `?norange=1` (ignore Range), `?status=C` (answer C), `?redirect=URL` (302 there).
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

const BLOCK = 64 * 1024;

/** Block `k` of the deterministic content: a fixed pseudo-random 64 KiB pattern stamped with k. */
function makeBase(): Buffer {
  const base = Buffer.alloc(BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    base.writeUInt32LE(x >>> 0, i);
  }
  return base;
}
const BASE = makeBase();

function block(k: number): Buffer {
  const b = Buffer.from(BASE);
  b.writeUInt32LE(k, 0);
  return b;
}

/** Bytes [start, end) of a file of the deterministic content. */
function* range(start: number, end: number): Generator<Buffer> {
  let pos = start;
  while (pos < end) {
    const k = Math.floor(pos / BLOCK);
    const from = pos - k * BLOCK;
    const to = Math.min(BLOCK, end - k * BLOCK);
    yield block(k).subarray(from, to);
    pos = k * BLOCK + to;
  }
}

/** SHA-256 (hex) of the first `size` bytes of the content. */
export function contentSha256(size: number): string {
  const hash = createHash('sha256');
  for (const chunk of range(0, size)) hash.update(chunk);
  return hash.digest('hex');
}

/** One request the server saw. */
export interface SeenRequest {
  path: string;
  host: string | undefined;
  range: string | undefined;
  authorization: string | undefined;
}

/** The running server. */
export interface ModelServer {
  readonly url: string;
  readonly port: number;
  /** Size of every file it serves. */
  readonly size: number;
  readonly requests: SeenRequest[];
  /** Bytes sent in all responses so far. */
  sent: number;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1:0; every path serves `size` bytes of the same content. */
export async function startModelServer(size = 50 * 1024 * 1024): Promise<ModelServer> {
  const dropped = new Set<string>();
  const requests: SeenRequest[] = [];
  const state = { sent: 0 };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void serve(req, res).catch(() => res.destroy());
  });
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({
      path: url.pathname,
      host: req.headers.host,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const q = url.searchParams;
    const redirect = q.get('redirect');
    if (redirect) return void res.writeHead(302, { location: redirect }).end();
    const status = q.get('status');
    if (status) return void res.writeHead(Number(status)).end('nope');
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && q.get('norange') !== '1') {
      start = Number(m[1]);
      if (start >= size) return void res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      res.writeHead(206, {
        'content-length': String(size - start),
        'content-range': `bytes ${start}-${size - 1}/${size}`,
        'accept-ranges': 'bytes',
        etag: '"v1"',
      });
    } else {
      res.writeHead(200, { 'content-length': String(size), 'accept-ranges': 'bytes', etag: '"v1"' });
    }
    const dropAt = q.get('drop') !== null && !dropped.has(url.pathname) ? Number(q.get('drop')) : null;
    if (dropAt !== null) dropped.add(url.pathname);
    const rate = q.get('rate') !== null ? Number(q.get('rate')) : null;
    let sentHere = 0;
    for (const chunk of range(start, size)) {
      if (res.destroyed) return;
      if (dropAt !== null && sentHere + chunk.length > dropAt) {
        const part = chunk.subarray(0, Math.max(0, dropAt - sentHere));
        if (part.length) res.write(part);
        state.sent += part.length;
        await delay(20);
        res.socket?.destroy();
        return;
      }
      sentHere += chunk.length;
      state.sent += chunk.length;
      if (!res.write(chunk)) await once(res, 'drain').catch(() => {});
      if (rate !== null) await delay(Math.ceil((chunk.length / rate) * 1000));
    }
    res.end();
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    size,
    requests,
    get sent() {
      return state.sent;
    },
    set sent(v: number) {
      state.sent = v;
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}
