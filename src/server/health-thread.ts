// The HEALTH_PORT listener's thread: an HTTP server of its own, off the gateway's event loop, that
// answers /health and /ready from the last answers the main thread sent it, says so when the main
// thread's heartbeat is older than the stall bound, and forwards /metrics to the main thread (bounded
// by a deadline). It runs as the source text of `healthThread` (eval'd, CommonJS), so it loads no
// TypeScript support and no module of ours: everything it uses comes from Node or from workerData.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HealthAnswer, ReadyAnswer } from './health.ts';

/** What the main thread hands the thread at start. */
export interface HealthThreadData {
  host: string;
  port: number;
  /** SHA-256 digests of the API keys (empty: no keys, every caller sees the detail). */
  keyDigests: Uint8Array[];
  /** One BigInt64 slot: process.hrtime.bigint() of the main thread's last heartbeat. */
  heartbeat: SharedArrayBuffer;
  /** A heartbeat older than this means the main thread is stalled. */
  stallMs: number;
  /** How long a /metrics request waits for the main thread. */
  metricsDeadlineMs: number;
  /** /metrics requests waiting for the main thread at once, at most. */
  maxMetricsPending: number;
  /** process.hrtime.bigint() when the gateway's health routes started (uptime_s counts from it). */
  startedAt: bigint;
  answers: HealthThreadAnswers;
}

/** The answers the main thread keeps sending. */
export interface HealthThreadAnswers {
  health: HealthAnswer;
  ready: ReadyAnswer;
}

/** Messages from the main thread. */
export type ToHealthThread =
  | { type: 'answers'; answers: HealthThreadAnswers }
  | { type: 'metrics'; id: number; status: number; headers: Record<string, string>; body: string }
  | { type: 'close' };

/** Messages to the main thread. */
export type FromHealthThread =
  | { type: 'listening'; port: number }
  | { type: 'listen-error'; message: string; code: string | undefined }
  | { type: 'metrics'; id: number; method: 'GET' | 'HEAD'; headers: Record<string, string> };

/** The thread's body; its source text is what the thread runs. */
export function healthThread(): void {
  const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
  const { createServer } = process.getBuiltinModule('node:http');
  const { createHash, randomUUID, timingSafeEqual } = process.getBuiltinModule('node:crypto');
  if (!parentPort) return;
  const port = parentPort;
  const data = workerData as HealthThreadData;
  const heartbeat = new BigInt64Array(data.heartbeat);
  let answers = data.answers;
  let nextId = 0;
  const pending = new Map<number, { req: IncomingMessage; res: ServerResponse; timer: NodeJS.Timeout }>();

  // The same check as the API port's (auth.ts): a Bearer key whose SHA-256 digest is one of the keys'.
  const keyValid = (authorization: string | undefined): boolean => {
    if (data.keyDigests.length === 0) return true;
    const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
    if (!match?.[1]) return false;
    const given = createHash('sha256').update(match[1].trim()).digest();
    return data.keyDigests.some((d) => timingSafeEqual(d, given));
  };
  const stalledMs = (): number => {
    const ms = Number(process.hrtime.bigint() - Atomics.load(heartbeat, 0)) / 1e6;
    return ms > data.stallMs ? Math.round(ms) : 0;
  };
  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    code: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(code, {
      'content-type': 'application/json; charset=utf-8',
      'x-request-id': req.headers['x-request-id'] ?? randomUUID(),
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  const error = (code: string, message: string) => ({ error: { code, message } });

  const health = (req: IncomingMessage, res: ServerResponse): void => {
    const { code, status, detail } = answers.health;
    const stalled = stalledMs();
    const overall = stalled > 0 ? 'stalled' : status;
    const noStore = { 'cache-control': 'no-store' };
    if (!keyValid(req.headers.authorization)) {
      send(req, res, stalled > 0 ? 503 : code, { status: overall }, noStore);
      return;
    }
    const body = {
      status: overall,
      timestamp: new Date().toISOString(),
      uptime_s: Math.floor(Number(process.hrtime.bigint() - data.startedAt) / 1e9),
      ...(stalled > 0 ? { stalled_ms: stalled } : {}),
      ...detail,
    };
    send(req, res, stalled > 0 ? 503 : code, body, noStore);
  };
  const ready = (req: IncomingMessage, res: ServerResponse): void => {
    const noStore = { 'cache-control': 'no-store' };
    if (stalledMs() > 0) {
      send(req, res, 503, { ready: false, reason: 'event loop stalled' }, noStore);
      return;
    }
    send(req, res, answers.ready.code, answers.ready.body, noStore);
  };
  const metrics = (req: IncomingMessage, res: ServerResponse): void => {
    if (pending.size >= data.maxMetricsPending) {
      send(req, res, 503, error('unavailable', 'Too many /metrics requests wait for the gateway.'));
      return;
    }
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      send(
        req,
        res,
        503,
        error('unavailable', `The gateway's event loop did not answer within ${data.metricsDeadlineMs} ms.`),
      );
    }, data.metricsDeadlineMs);
    pending.set(id, { req, res, timer });
    res.once('close', () => {
      if (pending.get(id)?.res !== res) return;
      clearTimeout(timer);
      pending.delete(id);
    });
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'x-request-id'] as const) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
    port.postMessage({ type: 'metrics', id, method, headers } satisfies FromHealthThread);
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && path === '/health') health(req, res);
    else if (get && path === '/ready') ready(req, res);
    else if (get && path === '/metrics') metrics(req, res);
    else send(req, res, 404, error('not_found', `${req.method} ${path} is not served on HEALTH_PORT`));
  });
  // Probes are short: no keep-alive connection outlives a shutdown by more than this.
  server.keepAliveTimeout = 5000;

  port.on('message', (msg: ToHealthThread) => {
    if (msg.type === 'answers') answers = msg.answers;
    else if (msg.type === 'metrics') {
      const waiting = pending.get(msg.id);
      if (!waiting) return;
      clearTimeout(waiting.timer);
      pending.delete(msg.id);
      const { req, res } = waiting;
      res.writeHead(msg.status, msg.headers);
      res.end(req.method === 'HEAD' ? undefined : msg.body);
    } else {
      for (const { timer } of pending.values()) clearTimeout(timer);
      pending.clear();
      server.close();
      server.closeAllConnections();
      port.close();
    }
  });
  server.once('error', (err: NodeJS.ErrnoException) => {
    port.postMessage({
      type: 'listen-error',
      message: err.message,
      code: err.code,
    } satisfies FromHealthThread);
    port.close();
  });
  server.listen({ host: data.host, port: data.port }, () => {
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : data.port;
    port.postMessage({ type: 'listening', port: bound } satisfies FromHealthThread);
  });
}
