// The gateway's pino logger from its settings: JSON to stdout, and with LOG_FILE also to a file —
// pino's own file destination, or, when rotation is configured, the pino-roll transport (a worker
// thread that rolls by size and/or time and keeps a bounded number of old files).
// Lines to stdout and to the file are gathered and written together at most every 100 ms (and at
// exit), not one write per line on libuv's thread pool as pino's default stdout does it (a
// hand-off to a thread and back per finished job; a JS CPU profile of three fleet gateways on two
// cores put ~9 % of their busy time there, a figure such profiles inflate on a busy box; one
// gateway shows no difference). A `kill -9` loses at most the last 100 ms of lines. The writes
// are synchronous: a reader that stops draining stdout stalls the gateway (visible: its health
// checks fail) instead of growing its memory without bound, as the thread-pool writes did.
import { resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Config } from '../config.ts';

type LogSettings = Pick<
  Config,
  'logLevel' | 'logFile' | 'logRotateSize' | 'logRotateFrequency' | 'logRotateKeep'
>;

/** A logger and the function that flushes and closes its file (a no-op without LOG_FILE). */
export interface GatewayLogger {
  logger: Logger;
  close(): Promise<void>;
}

const BASE = { service: 'comfy-gateway' };

/** Longest a line waits before it is written (ms). */
const FLUSH_EVERY_MS = 100;
/** Lines are written at once when this many characters gathered. */
const FLUSH_AT_CHARS = 64 * 1024;

/** Destinations with lines gathered, written by one exit handler (not one listener each). */
const live = new Set<BatchedDestination>();
let exitHandler: (() => void) | null = null;

/**
 * A pino destination that gathers lines and writes them to a synchronous sonic-boom destination
 * (fd 1 or a file) at most every 100 ms, when 64 Ki characters gathered, and at exit. After
 * `stop()` lines go straight through (one logged after the gateway closed is not held back);
 * after `end()` (the file is closed) they are dropped.
 */
class BatchedDestination {
  readonly #target: ReturnType<typeof pino.destination>;
  #lines: string[] = [];
  #chars = 0;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #ended = false;

  constructor(dest: number | string) {
    this.#target = pino.destination({
      dest,
      sync: true,
      ...(typeof dest === 'string' ? { mkdir: true } : {}),
    });
    live.add(this);
    exitHandler ??= () => {
      for (const destination of live) destination.flush();
    };
    if (live.size === 1) process.on('exit', exitHandler);
  }

  /** Takes one line (pino's stream contract). */
  write(line: string): boolean {
    if (this.#ended) return true;
    if (this.#stopped) return this.#target.write(line);
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= FLUSH_AT_CHARS) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(this.flush, FLUSH_EVERY_MS);
      this.#timer.unref();
    }
    return true;
  }

  /** Writes what gathered now. */
  flush = (): void => {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#lines.length === 0) return;
    const text = this.#lines.join('');
    this.#lines = [];
    this.#chars = 0;
    this.#target.write(text);
  };

  /** Writes what gathered and stops gathering. Idempotent. */
  stop(): void {
    this.flush();
    this.#stopped = true;
    if (live.delete(this) && live.size === 0 && exitHandler) process.off('exit', exitHandler);
  }

  /** Stops and closes the destination (a file); resolves when it is closed (bounded, 5 s). Idempotent. */
  end(): Promise<void> {
    this.stop();
    if (this.#ended) return Promise.resolve();
    this.#ended = true;
    return endStream(this.#target);
  }
}

/** Builds the logger the settings describe. */
export function createLogger(config: LogSettings): GatewayLogger {
  const level = config.logLevel;
  if (!config.logFile) {
    const stdout = new BatchedDestination(1);
    return { logger: pino({ level, base: BASE }, stdout), close: async () => stdout.stop() };
  }
  const file = resolve(config.logFile);
  if (config.logRotateSize || config.logRotateFrequency) {
    const transport = pino.transport({
      targets: [
        { target: 'pino/file', level, options: { destination: 1 } },
        {
          target: 'pino-roll',
          level,
          options: {
            file,
            mkdir: true,
            ...(config.logRotateSize ? { size: config.logRotateSize } : {}),
            ...(config.logRotateFrequency ? { frequency: config.logRotateFrequency } : {}),
            limit: { count: config.logRotateKeep },
          },
        },
      ],
    });
    const logger = pino({ level, base: BASE }, transport);
    return { logger, close: () => endStream(transport) };
  }
  const stdout = new BatchedDestination(1);
  const destination = new BatchedDestination(file);
  const logger = pino(
    { level, base: BASE },
    pino.multistream([
      { level, stream: stdout },
      { level, stream: destination },
    ]),
  );
  return {
    logger,
    close: async () => {
      stdout.stop();
      await destination.end();
    },
  };
}

/** Ends a destination or transport stream and waits (bounded, 5 s) until it wrote everything. */
function endStream(stream: {
  end(): void;
  once(event: 'close', listener: () => void): unknown;
}): Promise<void> {
  return new Promise<void>((done) => {
    const timer = setTimeout(done, 5000);
    timer.unref();
    stream.once('close', () => {
      clearTimeout(timer);
      done();
    });
    stream.end();
  });
}
