// The instance's WebSocket side: sockets registered by client id (a reconnect with the same id takes
// over, and the old socket's close unregisters the id, exactly like ComfyUI), feature-flag
// negotiation on the first JSON message, and sending text (Python json.dumps) and binary frames.
// Frames written in one tick leave in one write per socket: the socket is corked at the first frame
// and uncorked on the next tick (same bytes and order, one syscall instead of one per message).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { ordered, parsePyJson, pyDumps } from './py-json.ts';

/** Server feature flags advertised by v0.8.0. */
export function serverFeatureFlags(): Record<string, unknown> {
  return ordered([
    ['supports_preview_metadata', true],
    ['max_upload_size', 104857600],
    ['extension', ordered([['manager', ordered([['supports_v4', true]])]])],
  ]);
}

interface SocketMeta {
  flags: Record<string, unknown>;
  sawFirstJson: boolean;
}

/** Registry and sender for one instance's sockets. */
export class WsHub {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 104857600 });
  readonly #sockets = new Map<string, WebSocket>();
  readonly #meta = new Map<string, SocketMeta>();
  readonly #all = new Set<WebSocket>();
  /** The TCP socket under each WebSocket (what gets corked). */
  readonly #raw = new Map<WebSocket, Duplex>();
  /** Sockets corked until the scheduled flush. */
  #corked: Duplex[] = [];
  readonly #greet: (sid: string) => Array<Record<string, unknown>>;

  constructor(greet: (sid: string) => Array<Record<string, unknown>>) {
    this.#greet = greet;
  }

  /** Open sockets (registered or not). */
  get connected(): number {
    return this.#all.size;
  }

  /** Completes an upgrade for /ws or /api/ws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const sid = url.searchParams.get('clientId') || randomUUID().replaceAll('-', '');
      this.#all.add(ws);
      this.#raw.set(ws, socket);
      this.#sockets.set(sid, ws);
      this.#meta.set(sid, { flags: {}, sawFirstJson: false });
      ws.on('error', () => {});
      ws.on('close', () => {
        this.#all.delete(ws);
        this.#raw.delete(ws);
        // ComfyUI pops the id even when a newer socket took it over.
        this.#sockets.delete(sid);
        this.#meta.delete(sid);
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        const m = this.#meta.get(sid);
        if (!m || m.sawFirstJson || this.#sockets.get(sid) !== ws) return;
        let msg: unknown;
        try {
          msg = parsePyJson(data.toString());
        } catch {
          return;
        }
        m.sawFirstJson = true;
        if (msg && typeof msg === 'object' && (msg as { type?: unknown }).type === 'feature_flags') {
          const d = (msg as { data?: unknown }).data;
          m.flags = d && typeof d === 'object' ? (d as Record<string, unknown>) : {};
          this.#write(ws, messageText('feature_flags', serverFeatureFlags()));
        }
      });
      for (const msg of this.#greet(sid)) this.#write(ws, messageText(msg.type, msg.data));
    });
  }

  /** Sends a text (string) or binary (Buffer) frame, corking the socket until the next tick. */
  #write(ws: WebSocket, frame: string | Buffer): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    const socket = this.#raw.get(ws);
    if (socket && !socket.writableCorked) {
      socket.cork();
      if (this.#corked.length === 0) process.nextTick(this.#flush);
      this.#corked.push(socket);
    }
    ws.send(frame);
  }

  /** Uncorks every socket corked since the last flush. */
  readonly #flush = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    for (const s of corked) s.uncork();
  };

  /** send_sync(event, data, sid): to one registered client, or to every registered socket when sid is null. */
  send(type: string, data: unknown, sid: string | null): void {
    if (sid === null) {
      if (this.#sockets.size > 0) this.sendText(messageText(type, data), null);
      return;
    }
    const ws = this.#sockets.get(sid);
    if (ws) this.#write(ws, messageText(type, data));
  }

  /** Like send() for a message already serialised with messageText(). */
  sendText(text: string, sid: string | null): void {
    if (sid === null) {
      for (const ws of this.#sockets.values()) this.#write(ws, text);
      return;
    }
    const ws = this.#sockets.get(sid);
    if (ws) this.#write(ws, text);
  }

  /** True when that client negotiated `supports_preview_metadata`. */
  supportsPreviewMetadata(sid: string | null): boolean {
    return sid !== null && this.#meta.get(sid)?.flags.supports_preview_metadata === true;
  }

  /** Sends a binary frame to one client or broadcasts it. */
  sendBinary(frame: Buffer, sid: string | null): void {
    const targets =
      sid === null ? [...this.#sockets.values()] : [this.#sockets.get(sid)].filter((w) => w !== undefined);
    for (const ws of targets) this.#write(ws, frame);
  }

  /** Drops every socket abruptly (no close frame), like a crash or a network cut. */
  dropAll(): void {
    // What was sent before the cut goes out first, as it did before it was corked.
    this.#flush();
    for (const ws of this.#all) ws.terminate();
  }

  /** Terminates every socket and the server; idempotent. */
  close(): void {
    this.dropAll();
    this.#all.clear();
    this.#raw.clear();
    this.#sockets.clear();
    this.#meta.clear();
    this.#wss.close();
  }
}

/** One `{"type": ..., "data": ...}` text message, as json.dumps writes it (undefined fields left out). */
export function messageText(type: unknown, data: unknown): string {
  const head = type === undefined ? '' : `"type": ${pyDumps(type)}`;
  if (data === undefined) return `{${head}}`;
  return `{${head}${head ? ', ' : ''}"data": ${pyDumps(data)}}`;
}
