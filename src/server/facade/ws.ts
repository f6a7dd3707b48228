// The facade's `/ws` (and `/api/ws`) endpoint: one socket per ComfyUI client id, with ComfyUI's
// rules (the sid echoes `clientId` or is a fresh 32-hex id; a second socket with the same id takes
// over and the old one gets nothing more; `feature_flags` is answered once; non-JSON is ignored),
// `status` on connect, targeted and broadcast JSON messages, and binary preview frames.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { ownerDigest } from './common.ts';

/** Options of the socket hub. */
export interface FacadeSocketsOptions {
  /** Bound on open sockets; connections past it are refused with 503. */
  maxClients: number;
  /** API keys (empty = open). Sockets present `Authorization: Bearer` or `?token=`. */
  apiKeys: readonly string[];
  /** Current queue_remaining for `status` messages. */
  queueRemaining: () => number;
  /** What the server answers to a client's `feature_flags`. */
  featureFlags: () => Record<string, unknown>;
  /** The node a running prompt of this client executes now (re-sent on reconnect, as ComfyUI does). */
  currentNode?: (clientId: string) => string | null;
  /** Interval of liveness pings (dead sockets are dropped). */
  pingIntervalMs?: number;
  logger?: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

interface Client {
  socket: WebSocket;
  previewMetadata: boolean;
  alive: boolean;
  /** Digest of the API key the socket presented ('' without keys), to scope broadcasts. */
  owner: string;
}

const WS_PATHS = new Set(['/ws', '/api/ws']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Socket hub of the native facade. */
export class FacadeSockets {
  readonly #options: FacadeSocketsOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  readonly #clients = new Map<string, Client>();
  readonly #bySocket = new WeakMap<WebSocket, Client>();
  readonly #keys: Buffer[];
  readonly #ping: NodeJS.Timeout;
  #closing: Promise<void> | null = null;

  constructor(options: FacadeSocketsOptions) {
    this.#options = options;
    this.#keys = options.apiKeys.map(digest);
    this.#ping = setInterval(() => this.#heartbeat(), options.pingIntervalMs ?? 30_000);
    this.#ping.unref();
  }

  /** Number of clients with a socket. */
  get size(): number {
    return this.#clients.size;
  }

  /** True when `clientId`'s socket asked for previews with metadata (type-4 frames). */
  wantsMetadata(clientId: string): boolean {
    return this.#clients.get(clientId)?.previewMetadata === true;
  }

  /** True when `clientId` has an open socket. */
  has(clientId: string): boolean {
    return this.#clients.has(clientId);
  }

  /** Handles an HTTP upgrade if it is for the facade's socket path; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!WS_PATHS.has(url.pathname)) return false;
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (this.#closing) {
      refuse(503, 'Service Unavailable');
      return true;
    }
    const owner = this.#authorized(req, url);
    if (owner === null) {
      refuse(401, 'Unauthorized');
      return true;
    }
    if (this.#wss.clients.size >= this.#options.maxClients) {
      refuse(503, 'Service Unavailable');
      return true;
    }
    const requested = url.searchParams.get('clientId');
    const clientId = requested && requested.length <= 256 ? requested : randomUUID().replaceAll('-', '');
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#attach(ws, clientId, owner));
    return true;
  }

  /** Sends a JSON message to one client (no-op when it has no socket). */
  send(clientId: string, type: string, data: Record<string, unknown>): void {
    const client = this.#clients.get(clientId);
    if (client) this.#write(client, JSON.stringify({ type, data }));
  }

  /** Sends a JSON message to every client (only those of `owner`, when given). */
  broadcast(type: string, data: Record<string, unknown>, owner?: string): void {
    if (this.#clients.size === 0) return;
    const text = JSON.stringify({ type, data });
    for (const client of this.#clients.values())
      if (owner === undefined || client.owner === owner) this.#write(client, text);
  }

  /** A preview frame to every client of `owner` (ComfyUI broadcasts those of client-less prompts). */
  broadcastPreview(
    image: { mime: string; data: Buffer; metadata: Record<string, unknown> },
    owner: string,
  ): void {
    for (const [clientId, client] of this.#clients)
      if (client.owner === owner) this.sendPreview(clientId, image);
  }

  /** A progress-text frame (binary type 3: node id, then the text), ComfyUI v0.8's layout. */
  sendText(clientId: string, nodeId: string, text: string): void {
    const client = this.#clients.get(clientId);
    if (!client) return;
    const node = Buffer.from(nodeId);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(3, 0);
    head.writeUInt32BE(node.length, 4);
    this.#writeBinary(client, Buffer.concat([head, node, Buffer.from(text)]));
  }

  /** `status` with the current queue size, to everyone. */
  broadcastStatus(): void {
    this.broadcast('status', { status: { exec_info: { queue_remaining: this.#options.queueRemaining() } } });
  }

  /** Sends a preview image as ComfyUI's binary frame (type 4 with metadata when the client asked). */
  sendPreview(
    clientId: string,
    image: { mime: string; data: Buffer; metadata: Record<string, unknown> },
  ): void {
    const client = this.#clients.get(clientId);
    if (!client) return;
    let frame: Buffer;
    if (client.previewMetadata) {
      const meta = Buffer.from(JSON.stringify({ ...image.metadata, image_type: image.mime }));
      const head = Buffer.alloc(8);
      head.writeUInt32BE(4, 0);
      head.writeUInt32BE(meta.length, 4);
      frame = Buffer.concat([head, meta, image.data]);
    } else {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(1, 0);
      head.writeUInt32BE(image.mime === 'image/png' ? 2 : 1, 4);
      frame = Buffer.concat([head, image.data]);
    }
    this.#writeBinary(client, frame);
  }

  #writeBinary(client: Client, frame: Buffer): void {
    if (client.socket.readyState === client.socket.OPEN && client.socket.bufferedAmount < 8 * 1024 * 1024) {
      client.socket.send(frame, { binary: true });
    }
  }

  /** Closes every socket. Idempotent: a later caller waits for the first close. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#ping);
    // Every socket is dropped even when one throws; the first failure is reported after the rest.
    let failure: unknown;
    for (const ws of this.#wss.clients) {
      try {
        ws.terminate();
      } catch (err) {
        failure ??= err;
      }
    }
    this.#clients.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    if (failure !== undefined) throw failure;
  }

  /** The owner digest of the socket's key ('' without keys), or null when it may not connect. */
  #authorized(req: IncomingMessage, url: URL): string | null {
    if (this.#keys.length === 0) return '';
    const header =
      /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? url.searchParams.get('token');
    if (!header) return null;
    const given = digest(header.trim());
    return this.#keys.some((k) => timingSafeEqual(k, given)) ? ownerDigest(header.trim()) : null;
  }

  #attach(ws: WebSocket, clientId: string, owner: string): void {
    const client: Client = { socket: ws, previewMetadata: false, alive: true, owner };
    // A newer socket with the same id takes over; the old one stays open but is no longer addressed.
    this.#clients.set(clientId, client);
    this.#bySocket.set(ws, client);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('error', (err) => this.#options.logger?.debug({ err, client_id: clientId }, 'facade socket error'));
    ws.on('close', () => {
      if (this.#clients.get(clientId) === client) this.#clients.delete(clientId);
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let message: unknown;
      try {
        message = JSON.parse(String(data));
      } catch {
        return;
      }
      const m = message as { type?: unknown; data?: unknown };
      if (m.type === 'feature_flags' && m.data !== null && typeof m.data === 'object') {
        client.previewMetadata =
          (m.data as { supports_preview_metadata?: unknown }).supports_preview_metadata === true;
        this.#write(client, JSON.stringify({ type: 'feature_flags', data: this.#options.featureFlags() }));
      }
    });
    this.#write(
      client,
      JSON.stringify({
        type: 'status',
        data: { status: { exec_info: { queue_remaining: this.#options.queueRemaining() } }, sid: clientId },
      }),
    );
    // Like ComfyUI: a client that reconnects while its prompt runs learns the current node.
    const node = this.#options.currentNode?.(clientId);
    if (node) this.#write(client, JSON.stringify({ type: 'executing', data: { node } }));
  }

  #write(client: Client, text: string): void {
    const ws = client.socket;
    // A reader that stopped reading is not allowed to grow our memory without bound.
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > 8 * 1024 * 1024) {
      ws.terminate();
      return;
    }
    ws.send(text);
  }

  #heartbeat(): void {
    for (const ws of this.#wss.clients) {
      const client = this.#bySocket.get(ws);
      if (client && !client.alive) {
        ws.terminate();
        continue;
      }
      if (client) client.alive = false;
      ws.ping();
    }
  }
}
