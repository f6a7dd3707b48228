// Test helpers for the simulator suite: a WebSocket that collects messages and waits for one with a
// bound, and small HTTP helpers. Every wait is bounded; every socket is closed by its test.
import { WebSocket } from 'ws';

/** A collecting WebSocket client. */
export class Collector {
  readonly ws: WebSocket;
  readonly messages: Array<{ type: string; data: Record<string, unknown> } | { binary: Buffer }> = [];
  private waiters = new Set<() => void>();

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (d, isBinary) => {
      this.messages.push(isBinary ? { binary: d as Buffer } : JSON.parse(d.toString()));
      for (const w of this.waiters) w();
    });
    this.ws.on('close', () => {
      for (const w of this.waiters) w();
    });
    this.ws.on('error', () => {});
  }

  /** Waits until a message matches (bounded). */
  async waitFor(
    pred: (m: { type: string; data: Record<string, unknown> }) => boolean,
    ms = 5000,
  ): Promise<{ type: string; data: Record<string, unknown> }> {
    const deadline = Date.now() + ms;
    while (true) {
      const hit = this.messages.find((m) => 'type' in m && pred(m)) as
        | { type: string; data: Record<string, unknown> }
        | undefined;
      if (hit) return hit;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for a WS message; got ${this.types().join(',')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.add(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.waiters.clear();
    }
  }

  /** Waits for the socket to close (bounded). */
  async waitClosed(ms = 5000): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('socket did not close')), ms);
      this.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  types(): string[] {
    return this.messages.map((m) => ('type' in m ? m.type : 'binary'));
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Opens a collector and waits for its greeting. */
export async function connect(base: string, clientId: string): Promise<Collector> {
  const c = new Collector(`${base.replace('http', 'ws')}/ws?clientId=${clientId}`);
  await c.waitFor((m) => m.type === 'status');
  return c;
}

/** POSTs JSON and returns status + parsed body. */
export async function postJson(
  base: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const r = await fetch(base + path, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** The recorded invert prompt (EmptyImage 512x512 red -> ImageInvert -> SaveImage). */
export function invertPrompt(prefix = 'gw_invert', color = 16711680): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 512, height: 512, batch_size: 1, color } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}
