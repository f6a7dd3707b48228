// Helpers of the attack suite: raw sockets, open-fd counts and a /health latency probe, so each
// attack is replayed on loopback and its effect measured on the real process.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';

const require = createRequire(import.meta.url);

/** Open file descriptors of this process (the gateway under test runs in it). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Sends raw bytes on a fresh TCP connection; resolves with what came back once the server closed it. */
export function rawExchange(
  url: string,
  bytes: string,
  timeoutMs = 5000,
): Promise<{ text: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer: false });
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer: true });
    });
    socket.write(bytes);
  });
}

/** An HTTP/1.1 upgrade request for `path`. */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return (
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
  );
}

/** Milliseconds /health took to answer (throws past `timeoutMs`). */
export async function healthLatency(url: string, timeoutMs = 1000): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return performance.now() - started;
}

/** A JSON text nesting `depth` arrays around `leaf`. */
export function deepJson(depth: number, leaf = '1'): string {
  return '['.repeat(depth) + leaf + ']'.repeat(depth);
}

/** Follows a job's SSE stream (with `headers`) until a terminal status; returns the job as then stored. */
export async function waitTerminal(
  url: string,
  id: string,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ status: string; error: { code: string; message: string } | null } & Record<string, unknown>> {
  const signal = AbortSignal.timeout(timeoutMs);
  const res = await fetch(`${url}/api/v2/jobs/${id}/events`, {
    headers: { accept: 'text/event-stream', ...headers },
    signal,
  });
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if (/"status":"(succeeded|failed|canceled|expired)"/.test(text)) break;
  }
  const job = await fetch(`${url}/api/v2/jobs/${id}`, { headers, signal });
  return (await job.json()) as never;
}

/** A small PNG whose header declares `width`×`height` pixels (a decompression bomb's shape). */
export function pngDeclaring(width: number, height: number): Buffer {
  return apngDeclaring(width, height, 0);
}

/** Like pngDeclaring, with an acTL chunk stating `frames` animation frames when `frames` > 0. */
export function apngDeclaring(width: number, height: number, frames: number): Buffer {
  const { crc32, deflateSync } = require('node:zlib') as typeof import('node:zlib');
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(frames > 0
      ? [
          chunk(
            'acTL',
            Buffer.from(
              [0, 0, 0, 0, 0, 0, 0, 0].map((_, i) => (i < 4 ? (frames >>> (24 - 8 * i)) & 0xff : 0)),
            ),
          ),
        ]
      : []),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
