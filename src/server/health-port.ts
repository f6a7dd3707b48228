// HEALTH_PORT: /health, /ready and /metrics on a port of their own, served by a thread of their own
// (health-thread.ts), so a probe waits neither behind thousands of connections on the API port nor
// behind the gateway's event loop (its GC pauses, a burst of arrivals). The main thread sends the
// thread /health's and /ready's answers every ANSWERS_MS and beats a heartbeat every HEARTBEAT_MS into
// shared memory; when the heartbeat is older than the stall bound, /health and /ready answer 503
// `stalled` instead of the last answers. /metrics still needs the main thread: the thread forwards
// it, and answers 503 when the main thread does not answer within METRICS_DEADLINE_MS.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import { keyDigest } from './auth.ts';
import {
  type FromHealthThread,
  type HealthThreadAnswers,
  type HealthThreadData,
  healthThread,
  type ToHealthThread,
} from './health-thread.ts';

/** How often the main thread beats. */
const HEARTBEAT_MS = 100;
/** How often the main thread sends /health's and /ready's answers. */
const ANSWERS_MS = 250;
/** Default stall bound: a heartbeat older than this and /health says `stalled` (503). */
export const HEALTH_STALL_MS = 1000;
/** How long a /metrics request on HEALTH_PORT waits for the main thread. */
const METRICS_DEADLINE_MS = 5000;
/** /metrics requests waiting for the main thread at once, at most (a scrape is one). */
const MAX_METRICS_PENDING = 16;
/** How long closing waits for the thread to close its server before terminating it. */
const CLOSE_WAIT_MS = 1000;
/** How long starting waits for the thread to listen. */
const START_WAIT_MS = 10_000;

/** /metrics as the API port answers it (rendered on the main thread). */
export interface MetricsAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Options of listenHealth. */
export interface HealthPortOptions {
  host: string;
  port: number;
  /** The API keys, checked as on the API port. */
  apiKeys: readonly string[];
  /** /health's and /ready's answers now (called on the main thread every ANSWERS_MS). */
  answers: () => HealthThreadAnswers;
  /** Renders /metrics for a request with these headers (the app's own handling, auth included). */
  metrics: (method: 'GET' | 'HEAD', headers: Record<string, string>) => Promise<MetricsAnswer>;
  logger: FastifyBaseLogger;
  /** A heartbeat older than this means the main thread is stalled (default HEALTH_STALL_MS). */
  stallMs?: number;
}

/** The running HEALTH_PORT listener. */
export interface HealthPort {
  port: number;
  /** Stops the thread and its server (idempotent). */
  close(): Promise<void>;
}

/**
 * Starts the HEALTH_PORT thread; resolves once it listens (rejects when it cannot, e.g. the port is
 * taken). Nothing of it runs unless HEALTH_PORT is set: the gateway calls this only then.
 */
export async function listenHealth(options: HealthPortOptions): Promise<HealthPort> {
  const { logger } = options;
  const heartbeat = new BigInt64Array(new SharedArrayBuffer(8));
  const beat = () => Atomics.store(heartbeat, 0, process.hrtime.bigint());
  beat();
  const data: HealthThreadData = {
    host: options.host,
    port: options.port,
    keyDigests: options.apiKeys.map((k) => new Uint8Array(keyDigest(k))),
    heartbeat: heartbeat.buffer as SharedArrayBuffer,
    stallMs: options.stallMs ?? HEALTH_STALL_MS,
    metricsDeadlineMs: METRICS_DEADLINE_MS,
    maxMetricsPending: MAX_METRICS_PENDING,
    startedAt: process.hrtime.bigint(),
    answers: options.answers(),
  };
  const worker = new Worker(`(${healthThread.toString()})()`, {
    eval: true,
    workerData: data,
    // Not the gateway's Node options (heap sizes, --import, profilers): the thread needs none.
    execArgv: [],
    // A small HTTP server: a small heap.
    resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 },
    name: 'health-port',
  });
  const post = (msg: ToHealthThread) => worker.postMessage(msg);
  let closed = false;
  const timers = [
    setInterval(beat, HEARTBEAT_MS),
    setInterval(() => post({ type: 'answers', answers: options.answers() }), ANSWERS_MS),
  ];
  for (const timer of timers) timer.unref();
  const stopTimers = () => {
    for (const timer of timers) clearInterval(timer);
  };
  let alive = true;
  worker.once('exit', () => {
    alive = false;
  });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the HEALTH_PORT thread did not start')), START_WAIT_MS);
    worker.on('message', (msg: FromHealthThread) => {
      if (msg.type === 'listening') {
        clearTimeout(timer);
        resolve(msg.port);
      } else if (msg.type === 'listen-error') {
        clearTimeout(timer);
        reject(Object.assign(new Error(`HEALTH_PORT: ${msg.message}`), { code: msg.code }));
      } else {
        options.metrics(msg.method, msg.headers).then(
          (answer) => post({ type: 'metrics', id: msg.id, ...answer }),
          (err: unknown) => {
            logger.error({ err }, 'HEALTH_PORT: rendering /metrics failed');
            const body = JSON.stringify({ error: { code: 'internal_error', message: 'metrics failed' } });
            post({ type: 'metrics', id: msg.id, status: 500, headers: jsonHeaders(body), body });
          },
        );
      }
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      logger.error({ err }, 'HEALTH_PORT thread failed');
      reject(err);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      stopTimers();
      reject(new Error(`the HEALTH_PORT thread exited (${code})`));
      if (!closed) logger.error({ code }, 'HEALTH_PORT thread exited: probes there go unanswered');
    });
  }).catch(async (err: unknown) => {
    closed = true;
    stopTimers();
    await worker.terminate();
    throw err;
  });
  // Never what keeps the process alive.
  worker.unref();

  let closing: Promise<void> | null = null;
  return {
    port,
    close() {
      closing ??= (async () => {
        closed = true;
        stopTimers();
        if (!alive) return;
        post({ type: 'close' });
        try {
          await once(worker, 'exit', { signal: AbortSignal.timeout(CLOSE_WAIT_MS) });
        } catch {
          await worker.terminate();
        }
      })();
      return closing;
    },
  };
}

/** Headers of a JSON body sent as is. */
function jsonHeaders(body: string): Record<string, string> {
  return {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  };
}
