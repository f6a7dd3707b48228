// Server-sent event streams, the one way routes open them: a bound on the streams open at once
// (TooManyStreamsError beyond it, naming what to poll instead), the hijacked response with the SSE
// headers, keepalive comments well under the SDK's 45 s dead-line, and one end() whichever side
// ends first (the client goes, the resource finishes, the gateway shuts down). No `id:` fields.
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TooManyStreamsError } from './errors.ts';

/** Options of an EventStreams. */
export interface EventStreamsOptions {
  /** Streams open at once over this route. */
  maxStreams: number;
  /** What a refused client should poll instead ("job", "run"…), for the 429 message. */
  poll: string;
  keepaliveMs?: number;
  /** Ends every stream when the gateway shuts down (clients reconnect elsewhere or poll). */
  shutdownSignal?: AbortSignal | undefined;
}

/** One open stream. */
export interface EventStream {
  /** Aborted once the stream ended: scope subscriptions with it. */
  readonly signal: AbortSignal;
  /** Writes one event; nothing once the stream ended. */
  send(type: string, data: unknown): void;
  /** Ends the stream (idempotent). */
  end(): void;
}

/** The event streams of one route, bounded. */
export class EventStreams {
  readonly #o: EventStreamsOptions;
  /**
   * The end() of each open stream, behind one listener on the shutdown signal: Node walks a
   * signal's whole listener list on every add and remove, so a listener per stream costs
   * quadratic time with thousands of streams open (see scopedSignal in comfy/deadline.ts).
   */
  readonly #ends = new Set<() => void>();

  constructor(options: EventStreamsOptions) {
    this.#o = options;
    options.shutdownSignal?.addEventListener(
      'abort',
      () => {
        for (const end of [...this.#ends]) end();
      },
      { once: true },
    );
  }

  /** Opens a stream on `reply`; throws TooManyStreamsError (429) when too many are open. */
  open(request: FastifyRequest, reply: FastifyReply): EventStream {
    const { maxStreams, poll, keepaliveMs = 15_000, shutdownSignal } = this.#o;
    if (this.#ends.size >= maxStreams)
      throw new TooManyStreamsError(
        `At most ${maxStreams} event streams may be open; poll the ${poll} instead.`,
      );
    const raw = hijackForEvents(request, reply);
    const scope = new AbortController();
    const end = () => {
      if (scope.signal.aborted) return;
      scope.abort();
      clearInterval(keepalive);
      this.#ends.delete(end);
      if (!raw.writableEnded) raw.end();
    };
    const keepalive = setInterval(() => {
      if (!raw.writableEnded) raw.write(': keepalive\n\n');
    }, keepaliveMs);
    keepalive.unref();
    raw.once('close', end);
    if (shutdownSignal?.aborted) queueMicrotask(end);
    else this.#ends.add(end);
    return {
      signal: scope.signal,
      send: (type, data) => {
        if (!scope.signal.aborted) raw.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
      },
      end,
    };
  }
}

/** Takes the response over from Fastify and writes the event-stream head; returns the raw response. */
export function hijackForEvents(request: FastifyRequest, reply: FastifyReply): ServerResponse {
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': request.id,
  });
  return reply.raw;
}
