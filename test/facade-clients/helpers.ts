// Helpers for driving the native facade the way third-party clients do: raw HTTP requests with
// exactly the headers a client sends (Python urllib, curl), a recording WebSocket, PNG checks.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { PNG } from 'pngjs';
import WebSocket from 'ws';
import type { Json } from '../support/gateway.ts';

/** One raw HTTP exchange. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: Json;
}

/**
 * Sends a request with exactly `headers` (node:http adds only Host, and Content-Length for a body;
 * no Content-Type unless given), bounded by `timeoutMs`.
 */
export function rawRequest(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    timeoutMs?: number;
  } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const req = httpRequest(
      url,
      {
        method: init.method ?? (body ? 'POST' : 'GET'),
        headers: { ...init.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          let json: Json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The headers Python 3.11's urllib.request sends with `Request(url, data=bytes)`. */
export const URLLIB_POST_HEADERS = {
  'accept-encoding': 'identity',
  'content-type': 'application/x-www-form-urlencoded',
  'user-agent': 'Python-urllib/3.11',
  connection: 'close',
};

/** The headers of a urllib GET. */
export const URLLIB_GET_HEADERS = {
  'accept-encoding': 'identity',
  'user-agent': 'Python-urllib/3.11',
  connection: 'close',
};

/** A socket on the facade that records every frame in order; waits are bounded. */
export class WsRecorder {
  /** Text and binary frames in arrival order. */
  readonly frames: Array<{ type: string; data: Json } | { binary: Buffer }> = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(baseUrl: string, clientId: string | null, headers: Record<string, string> = {}) {
    const q = clientId === null ? '' : `?clientId=${encodeURIComponent(clientId)}`;
    this.ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/ws${q}`, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) this.frames.push({ binary: data as Buffer });
      else this.frames.push(JSON.parse(String(data)));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** The JSON messages so far. */
  get messages(): Array<{ type: string; data: Json }> {
    return this.frames.filter((f): f is { type: string; data: Json } => 'type' in f);
  }

  /** Resolves when `pred` holds over the messages so far (or rejects after `ms`). */
  async until(pred: (m: WsRecorder['messages']) => boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; saw ${this.messages.map((m) => m.type).join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for `executing` with `node: null` for `promptId` (websockets_api_example's loop). */
  untilDone(promptId: string, ms = 15_000): Promise<void> {
    return this.until(
      (m) => m.some((x) => x.type === 'executing' && x.data.node === null && x.data.prompt_id === promptId),
      ms,
    );
  }

  close(): void {
    this.ws.terminate();
  }
}

/**
 * Asserts `png` is a PNG of `width`x`height` whose first pixel is `rgb` (within 1: ComfyUI's float32
 * round trip truncates); returns it decoded.
 */
export function assertPng(png: Buffer, width: number, height: number, rgb?: [number, number, number]): PNG {
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'PNG signature');
  const img = PNG.sync.read(png);
  assert.deepEqual([img.width, img.height], [width, height]);
  if (rgb) {
    const got = [img.data[0], img.data[1], img.data[2]] as number[];
    assert.ok(
      got.every((v, i) => Math.abs(v - (rgb[i] as number)) <= 1),
      `first pixel ${got} is not ${rgb}`,
    );
  }
  return img;
}

/** EmptyImage(color) → ImageInvert → SaveImage: the output's first pixel is the inverted color. */
export function invertWorkflow(
  prefix: string,
  color: number,
  size = 32,
): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: size, height: size, batch_size: 1, color } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}

/** EmptyImage(color) → `n` ImageInverts → SaveImage (node "3"): longer runs for ordering tests. */
export function chainWorkflow(
  prefix: string,
  color: number,
  n: number,
  size = 32,
): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  const wf: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {
    '1': { class_type: 'EmptyImage', inputs: { width: size, height: size, batch_size: 1, color } },
  };
  let last = '1';
  for (let i = 0; i < n; i++) {
    const id = String(10 + i);
    wf[id] = { class_type: 'ImageInvert', inputs: { image: [last, 0] } };
    last = id;
  }
  wf['3'] = { class_type: 'SaveImage', inputs: { images: [last, 0], filename_prefix: prefix } };
  return wf;
}

/** The RGB that ImageInvert makes of `color` (0xRRGGBB). */
export function inverted(color: number): [number, number, number] {
  return [255 - ((color >> 16) & 255), 255 - ((color >> 8) & 255), 255 - (color & 255)];
}

/** Polls `check` until it returns a value (bounded). */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Records every global-fetch call to `baseUrl` answered 4xx/5xx (as `METHOD path status`) into
 * `failures`, for clients that use the global fetch. Returns the function that restores fetch.
 */
export function watchFetch(baseUrl: string, failures: string[]): () => void {
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const res = await original(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith(baseUrl) && res.status >= 400)
      failures.push(`${init?.method ?? 'GET'} ${url.slice(baseUrl.length)} ${res.status}`);
    return res;
  };
  return () => {
    globalThis.fetch = original;
  };
}
