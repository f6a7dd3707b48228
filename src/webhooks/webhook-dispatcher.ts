// Delivers job events to webhook URLs: Standard Webhooks signatures, retries with exponential backoff
// (bounded attempts and total time), a per-attempt timeout, the SSRF guard shared with inputs, and a
// bounded per-job delivery log. send() never rejects: it resolves when delivered or finally failed.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { Webhook } from 'standardwebhooks';
import { type Dispatcher, request } from 'undici';
import { IoError, type LookupFunction, redactUrl, SsrfGuard } from '../io/index.ts';
import { WebhookHeaderError } from './errors.ts';
import type { WebhookAttempt, WebhookDelivery, WebhookEventType } from './webhook-delivery.ts';
import { webhookHeaders } from './webhook-headers.ts';
import type { Logger } from '../logger.ts';

/** What webhooks log with (info is optional). */
export type WebhookLogger = Pick<Logger, 'debug' | 'warn'> & Partial<Pick<Logger, 'info'>>;

/** Options of a WebhookDispatcher. */
export interface WebhookDispatcherOptions {
  /** Signing secret: `whsec_<base64>` (Standard Webhooks form) or any other string (used as raw bytes). */
  secret?: string;
  /** Attempts per delivery, first one included (default 6). */
  maxAttempts?: number;
  /** Give up when the next retry would start later than this after the first attempt (default 10 min). */
  maxTotalMs?: number;
  /** Per-attempt timeout (default 10 s). */
  timeoutMs?: number;
  /**
   * Timeout of a delivery's first attempt (default 5 s, at most `timeoutMs`): the gateway holds a
   * failed job's report until that attempt ends, so it is kept short; later attempts get `timeoutMs`.
   */
  firstAttemptTimeoutMs?: number;
  allowPrivate: string[];
  logger?: WebhookLogger;
  /** First retry delay (default 1 s); doubles per attempt, with jitter, capped by maxBackoffMs (default 60 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Minimum interval between progress events per job and URL (default 2 s); extra ones are skipped. */
  progressIntervalMs?: number;
  /** Deliveries kept per job (default 50) and jobs remembered (default 10,000). */
  maxDeliveriesPerJob?: number;
  maxJobs?: number;
  /** DNS resolution (tests inject names). */
  lookup?: LookupFunction;
}

/** Per-delivery options of `send()`. */
export interface WebhookSendOptions {
  /**
   * Extra headers on every attempt, e.g. `{ 'x-request-id': id }` to correlate with gateway logs. They
   * are not signed (Standard Webhooks signs id, timestamp and body), not recorded in the delivery log
   * and never logged; `webhook-*`, content-type, user-agent and framing headers are refused.
   */
  headers?: Record<string, string>;
  /**
   * Called with a copy of the delivery when it is created, after every attempt and when it ends, so
   * the caller can keep it (the job store's outbox). Not called for progress events.
   */
  onUpdate?: (delivery: WebhookDelivery) => void;
  /** A delivery persisted before a restart: continues it (same `webhook-id`, attempts counted). */
  resume?: Pick<WebhookDelivery, 'id' | 'attempts' | 'created_at'>;
}

/** Sends signed, retried webhook deliveries and keeps their log. */
export class WebhookDispatcher {
  readonly #o: Required<Omit<WebhookDispatcherOptions, 'secret' | 'logger' | 'lookup'>>;
  readonly #logger: WebhookLogger | undefined;
  readonly #signer: Webhook | undefined;
  readonly #guard: SsrfGuard;
  readonly #agent: Dispatcher;
  readonly #log: LRUCache<string, WebhookDelivery[]>;
  readonly #lastProgress: LRUCache<string, number>;
  readonly #pending = new Set<Promise<WebhookDelivery>>();
  readonly #shutdown = new AbortController();
  #closed = false;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = {
      maxAttempts: Math.max(1, options.maxAttempts ?? 6),
      maxTotalMs: options.maxTotalMs ?? 600_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      firstAttemptTimeoutMs: Math.min(options.firstAttemptTimeoutMs ?? 5_000, options.timeoutMs ?? 10_000),
      allowPrivate: options.allowPrivate,
      initialBackoffMs: options.initialBackoffMs ?? 1_000,
      maxBackoffMs: options.maxBackoffMs ?? 60_000,
      progressIntervalMs: options.progressIntervalMs ?? 2_000,
      maxDeliveriesPerJob: options.maxDeliveriesPerJob ?? 50,
      maxJobs: options.maxJobs ?? 10_000,
    };
    this.#logger = options.logger;
    if (options.secret !== undefined && options.secret !== '') {
      this.#signer = options.secret.startsWith('whsec_')
        ? new Webhook(options.secret)
        : new Webhook(new TextEncoder().encode(options.secret), { format: 'raw' });
    }
    this.#guard = new SsrfGuard({ allowPrivate: options.allowPrivate, lookup: options.lookup });
    this.#agent = this.#guard.createAgent({ connectTimeoutMs: this.#o.timeoutMs });
    this.#log = new LRUCache({ max: this.#o.maxJobs });
    this.#lastProgress = new LRUCache({ max: this.#o.maxJobs, ttl: 3_600_000 });
  }

  /** Checks a webhook URL's shape and literal address (call when a job is submitted, to fail early). */
  validateUrl(url: string): void {
    this.#guard.checkUrlShape(url);
  }

  /** Checks extra delivery headers (throws WebhookHeaderError; call at submission to fail early). */
  validateHeaders(headers: Record<string, string>): void {
    webhookHeaders(headers);
  }

  /**
   * Delivers one event; resolves when delivered, finally failed or skipped (never rejects). Invalid
   * `options.headers` fail the delivery at once, without an attempt, with the reason in its error.
   */
  send(
    jobId: string,
    url: string,
    eventType: WebhookEventType,
    payload: unknown,
    options: WebhookSendOptions = {},
  ): Promise<WebhookDelivery> {
    const resumed = options.resume;
    const delivery: WebhookDelivery = {
      id: resumed?.id ?? `msg_${randomUUID().replaceAll('-', '')}`,
      job_id: jobId,
      event: eventType,
      url: redactUrl(url),
      status: 'pending',
      attempts: resumed ? [...resumed.attempts] : [],
      created_at: resumed?.created_at ?? new Date().toISOString(),
      completed_at: null,
      error: null,
    };
    const onUpdate = eventType === 'job.progress' ? undefined : options.onUpdate;
    const notify = onUpdate
      ? () => {
          try {
            onUpdate({ ...delivery, attempts: [...delivery.attempts] });
          } catch (err) {
            this.#logger?.warn({ err, job_id: jobId }, 'webhook update listener failed');
          }
        }
      : () => {};
    if (this.#closed) {
      // Left pending for the caller's outbox: a restarted gateway delivers it.
      if (resumed) return Promise.resolve({ ...delivery, attempts: [...delivery.attempts] });
      return Promise.resolve(this.#finish(delivery, 'skipped', 'the webhook dispatcher is closed'));
    }
    let extraHeaders: Record<string, string>;
    try {
      extraHeaders = webhookHeaders(options.headers);
    } catch (err) {
      if (!(err instanceof WebhookHeaderError)) throw err;
      this.#record(delivery);
      const failed = this.#finish(delivery, 'failed', `${err.code}: ${err.message}`);
      notify();
      return Promise.resolve(failed);
    }
    if (eventType === 'job.progress') {
      const key = `${jobId}\0${url}`;
      const last = this.#lastProgress.get(key);
      const now = Date.now();
      // Progress is advisory: throttled, not logged when skipped, and never retried.
      if (last !== undefined && now - last < this.#o.progressIntervalMs)
        return Promise.resolve({ ...delivery, status: 'skipped' });
      this.#lastProgress.set(key, now);
    } else {
      this.#lastProgress.delete(`${jobId}\0${url}`);
    }
    this.#record(delivery);
    notify();
    const run = this.#deliver(delivery, url, payload, extraHeaders, notify)
      .catch((err: unknown) => this.#finish(delivery, 'failed', `internal error: ${(err as Error).message}`))
      .finally(notify);
    this.#pending.add(run);
    void run.finally(() => this.#pending.delete(run));
    return run;
  }

  /** The delivery log of a job (oldest first; bounded). */
  deliveries(jobId: string): WebhookDelivery[] {
    return (this.#log.get(jobId) ?? []).map((d) => ({ ...d, attempts: [...d.attempts] }));
  }

  /** Waits up to `graceMs` for pending deliveries; then stops their retries (they end as failed). */
  async flush(graceMs: number): Promise<void> {
    if (this.#pending.size === 0) return;
    const all = Promise.allSettled([...this.#pending]);
    const timer = AbortSignal.timeout(Math.max(0, graceMs));
    await Promise.race([
      all,
      new Promise<void>((resolve) => timer.addEventListener('abort', () => resolve(), { once: true })),
    ]);
    if (this.#pending.size > 0) {
      this.#shutdown.abort();
      await Promise.allSettled([...this.#pending]);
    }
  }

  /** Stops new deliveries, ends pending ones and releases connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush(0);
    await this.#agent.close().catch(() => {});
  }

  async #deliver(
    delivery: WebhookDelivery,
    url: string,
    payload: unknown,
    extraHeaders: Record<string, string>,
    notify: () => void,
  ): Promise<WebhookDelivery> {
    // A resumed delivery's total budget counts from when it was first created.
    const started = Math.min(Date.now(), Date.parse(delivery.created_at) || Date.now());
    const timestamp = new Date();
    const body = JSON.stringify({ type: delivery.event, timestamp: timestamp.toISOString(), data: payload });
    // The dispatcher's own headers are spread last: nothing a caller passes can replace them.
    const headers: Record<string, string> = {
      ...extraHeaders,
      'content-type': 'application/json',
      'user-agent': 'comfy-gateway-webhooks',
      'webhook-id': delivery.id,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    };
    if (this.#signer !== undefined)
      headers['webhook-signature'] = this.#signer.sign(delivery.id, timestamp, body);
    const maxAttempts = delivery.event === 'job.progress' ? 1 : this.#o.maxAttempts;

    for (let n = delivery.attempts.length + 1; ; n++) {
      const attempt = await this.#attempt(n, url, headers, body);
      delivery.attempts.push(attempt.record);
      if (attempt.ok) return this.#finish(delivery, 'delivered', null);
      if (this.#shutdown.signal.aborted) {
        // Stopped by shutdown, not by the receiver: left pending for the outbox to resume.
        delivery.error = 'stopped at shutdown';
        return { ...delivery, attempts: [...delivery.attempts] };
      }
      notify();
      const reason = attempt.record.error ?? `HTTP ${attempt.record.status_code}`;
      if (attempt.permanent || n >= maxAttempts) return this.#finish(delivery, 'failed', reason);
      const backoff = Math.min(this.#o.maxBackoffMs, this.#o.initialBackoffMs * 2 ** (n - 1));
      const delay = Math.max(attempt.retryAfterMs ?? 0, backoff / 2 + Math.random() * (backoff / 2));
      if (Date.now() + delay - started > this.#o.maxTotalMs)
        return this.#finish(
          delivery,
          'failed',
          `${reason} (gave up: retries would exceed ${this.#o.maxTotalMs} ms)`,
        );
      try {
        await sleep(delay, undefined, { signal: this.#shutdown.signal });
      } catch {
        // Still pending: a caller with an outbox resumes it after a restart.
        delivery.error = `${reason} (retries stopped at shutdown)`;
        return { ...delivery, attempts: [...delivery.attempts] };
      }
    }
  }

  async #attempt(
    n: number,
    url: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{ ok: boolean; permanent: boolean; retryAfterMs?: number; record: WebhookAttempt }> {
    const startedAt = Date.now();
    const record: WebhookAttempt = {
      attempt: n,
      started_at: new Date(startedAt).toISOString(),
      duration_ms: 0,
      status_code: null,
      error: null,
    };
    const done = (ok: boolean, permanent: boolean, retryAfterMs?: number) => {
      record.duration_ms = Date.now() - startedAt;
      return { ok, permanent, retryAfterMs, record };
    };
    try {
      const target = this.#guard.checkUrlShape(url);
      const timeoutMs = n === 1 ? this.#o.firstAttemptTimeoutMs : this.#o.timeoutMs;
      const signal = AbortSignal.any([this.#shutdown.signal, AbortSignal.timeout(timeoutMs)]);
      const res = await request(target, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.#agent,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      // Read a little of the answer so the connection can be reused; receivers' bodies are not kept.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      record.status_code = res.statusCode;
      if (res.statusCode >= 200 && res.statusCode < 300) return done(true, false);
      record.error = `HTTP ${res.statusCode}`;
      const retryAfter = Number(res.headers['retry-after']);
      const retryAfterMs = Number.isFinite(retryAfter)
        ? Math.min(retryAfter * 1000, this.#o.maxBackoffMs)
        : undefined;
      // 410 Gone is the Standard Webhooks way for a receiver to say "stop sending".
      return done(false, res.statusCode === 410, retryAfterMs);
    } catch (err) {
      const inner = (err as { cause?: unknown }).cause;
      const ioErr = err instanceof IoError ? err : inner instanceof IoError ? inner : undefined;
      if (ioErr !== undefined) {
        record.error = `${ioErr.code}: ${ioErr.message}`;
        return done(false, ioErr.code === 'input_url_forbidden' || ioErr.code === 'input_invalid');
      }
      record.error = this.#shutdown.signal.aborted
        ? 'stopped at shutdown'
        : (err as Error).name === 'TimeoutError' ||
            (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT'
          ? `timed out after ${n === 1 ? this.#o.firstAttemptTimeoutMs : this.#o.timeoutMs} ms`
          : `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`;
      return done(false, this.#shutdown.signal.aborted);
    }
  }

  #record(delivery: WebhookDelivery): void {
    const list = this.#log.get(delivery.job_id) ?? [];
    list.push(delivery);
    if (list.length > this.#o.maxDeliveriesPerJob) list.splice(0, list.length - this.#o.maxDeliveriesPerJob);
    this.#log.set(delivery.job_id, list);
  }

  #finish(
    delivery: WebhookDelivery,
    status: WebhookDelivery['status'],
    error: string | null,
  ): WebhookDelivery {
    delivery.status = status;
    delivery.error = error;
    delivery.completed_at = new Date().toISOString();
    const log = {
      job_id: delivery.job_id,
      webhook_id: delivery.id,
      event: delivery.event,
      url: delivery.url,
      attempts: delivery.attempts.length,
    };
    if (status === 'failed') this.#logger?.warn({ ...log, error }, 'webhook delivery failed');
    else this.#logger?.debug({ ...log, status }, 'webhook delivery finished');
    return { ...delivery, attempts: [...delivery.attempts] };
  }
}
