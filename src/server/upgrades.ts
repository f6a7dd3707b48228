// The HTTP server's one `upgrade` listener. Node stops applying its HTTP timeouts to a socket once
// it is handed to `upgrade` listeners, and destroys nothing a listener declines: an upgrade request
// nobody answers stays open forever (an unauthenticated fd leak). So every upgrade gets a
// handshake deadline before any handler (or auth) runs, handlers claim what is theirs, and the
// rest are answered 404 and closed.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Takes an upgrade request: returns true when it answered or upgraded the socket, false when it is not its path. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Default deadline for an upgrade to complete (a handler's WebSocket clears it when it takes the socket). */
export const UPGRADE_HANDSHAKE_MS = 10_000;

/** Writes a bodiless HTTP answer and closes the socket once it is flushed. */
export function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () =>
    socket.destroy(),
  );
}

/** The registry of upgrade handlers of one server. */
export class UpgradeRoutes {
  readonly #handlers = new Set<UpgradeHandler>();
  readonly #handshakeMs: number;
  #server: Server | null = null;

  constructor(options: { handshakeMs?: number } = {}) {
    this.#handshakeMs = options.handshakeMs ?? UPGRADE_HANDSHAKE_MS;
  }

  /** Adds a handler; returns the function that removes it. */
  add(handler: UpgradeHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** Installs the listener on `server` (once). */
  attach(server: Server): void {
    if (this.#server) return;
    this.#server = server;
    server.on('upgrade', this.#onUpgrade);
  }

  /** Removes the listener. Idempotent. */
  detach(): void {
    this.#server?.off('upgrade', this.#onUpgrade);
    this.#server = null;
  }

  #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // The HTTP server took its own error listener off: without one a reset would crash the process.
    socket.on('error', () => socket.destroy());
    // A WebSocket taking the socket clears this (ws calls setTimeout(0)); anything else is cut.
    const timed = socket as Duplex & { setTimeout?: (ms: number, cb: () => void) => void };
    timed.setTimeout?.(this.#handshakeMs, () => socket.destroy());
    try {
      for (const handler of this.#handlers) if (handler(req, socket, head)) return;
    } catch {
      refuseUpgrade(socket, 500, 'Internal Server Error');
      return;
    }
    refuseUpgrade(socket, 404, 'Not Found');
  };
}
