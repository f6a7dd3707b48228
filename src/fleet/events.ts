// Job events across the fleet: whatever a gateway emits for a job it runs is also published on
// the job's Redis channel (through the store's write pipeline, so after the state it describes;
// the events of one job in one flush go out as one message, a JSON array).
// Every gateway holds one pattern subscription to all job channels (subscribing per watched job
// cost two commands per ?wait request, more than the rest of the job's Redis traffic) and hands
// a message to local watchers only; a message for a job nobody here watches is dropped undecoded.
// The terminal status event of a job another gateway admitted carries the job's final record
// (without its workflow), so the admitting gateway, where its caller waits, has the end state
// without reading it back (every gateway receives the message: jobs admitted where they run do
// without it). A new watcher of a job another gateway
// runs reads its status once more after subscribing (the whole record only when it ended), so a
// job that ended just before still delivers its terminal status.
import type { Redis } from 'ioredis';
import { isTerminal, type JobEvent, JobEvents, type JobRecord } from '../jobs/index.ts';
import type { FleetKeys } from './keys.ts';

/** Options of FleetEvents. */
export interface FleetEventsOptions {
  /** A connection in subscriber mode, owned by the caller. */
  subscriber: Redis;
  keys: FleetKeys;
  gatewayId: string;
  /** Publishes after the writes queued so far (RedisJobStore.publish). */
  publish: (channel: string, message: string) => void;
  /** The stored record of a job that ended, else undefined (a new watcher of a job another gateway may run). */
  loadEnded: (id: string) => Promise<JobRecord | undefined>;
  /** Takes another gateway's final record of a job watched here (RedisJobStore.absorb). */
  absorb: (record: JobRecord) => void;
  onError?: (err: unknown) => void;
}

interface Envelope {
  g: string;
  e: JobEvent;
  /** With a terminal status event: the job's record as it ended, without its workflow. */
  r?: JobRecord;
}

/** JobEvents whose channels span every gateway of the fleet. */
export class FleetEvents extends JobEvents {
  readonly #o: FleetEventsOptions;
  readonly #prefix: string;
  readonly #ready: Promise<unknown>;
  #isLocal: (id: string) => boolean = () => false;
  #finalRecord: (id: string) => JobRecord | undefined = () => undefined;

  constructor(options: FleetEventsOptions) {
    super();
    this.#o = options;
    this.#prefix = options.keys.events('');
    // The Buffer event: ioredis decodes a message to a string only for 'pmessage' listeners, and
    // most messages (jobs nobody here watches) are dropped before that.
    options.subscriber.on('pmessageBuffer', this.#onMessage);
    this.#ready = options.subscriber.psubscribe(`${this.#prefix}*`);
    this.#ready.catch((err: unknown) => options.onError?.(err));
  }

  /** Tells which jobs this gateway runs (their events reach local watchers directly). */
  setLocal(isLocal: (id: string) => boolean): void {
    this.#isLocal = isLocal;
  }

  /**
   * Tells which record a job's terminal event carries: that of a job another gateway admitted
   * (whose caller waits there), none for a job admitted here (every gateway would receive it).
   */
  setFinalRecord(finalRecord: (id: string) => JobRecord | undefined): void {
    this.#finalRecord = finalRecord;
  }

  /** Resolves once the pattern subscription is in place. */
  ready(): Promise<unknown> {
    return this.#ready;
  }

  #onMessage = (_pattern: unknown, channelBuffer: Buffer, message: Buffer): void => {
    const channel = channelBuffer.toString();
    if (!channel.startsWith(this.#prefix)) return;
    const jobId = channel.slice(this.#prefix.length);
    if (super.listenerCount(jobId) === 0) return;
    let envelopes: Envelope | Envelope[];
    try {
      // One message per event, or the events one flush of the store published together.
      envelopes = JSON.parse(message.toString()) as Envelope | Envelope[];
    } catch {
      return;
    }
    for (const envelope of Array.isArray(envelopes) ? envelopes : [envelopes]) {
      // Our own events reached our watchers when we emitted them.
      if (envelope.g === this.#o.gatewayId) continue;
      // The final record first: a watcher woken by the terminal event reads it from memory.
      if (envelope.r?.id === jobId) this.#o.absorb(envelope.r);
      super.emit(jobId, envelope.e);
    }
  };

  /** Delivers locally and publishes to the fleet. */
  override emit(jobId: string, event: JobEvent): void {
    super.emit(jobId, event);
    const envelope: Envelope = { g: this.#o.gatewayId, e: event };
    if (event.type === 'status' && isTerminal(event.data.status)) {
      const record = this.#finalRecord(jobId);
      if (record && isTerminal(record.status))
        envelope.r = { ...record, workflow: undefined } as unknown as JobRecord;
    }
    this.#o.publish(this.#o.keys.events(jobId), JSON.stringify(envelope));
  }

  /** Watchers may sit on any gateway: the manager emits as if someone always listens. */
  override listenerCount(jobId: string): number {
    return super.listenerCount(jobId) + 1;
  }

  /** Local watchers of one job. */
  localListenerCount(jobId: string): number {
    return super.listenerCount(jobId);
  }

  override subscribe(
    jobId: string,
    listener: (event: JobEvent) => void,
    signal?: AbortSignal,
    options: { endOnly?: boolean } = {},
  ): () => void {
    const off = super.subscribe(jobId, listener, signal, options);
    if (signal?.aborted || this.#isLocal(jobId)) return off;
    let done = false;
    signal?.addEventListener('abort', () => (done = true), { once: true });
    this.#o
      .loadEnded(jobId)
      .then((job) => {
        if (done || !job || !isTerminal(job.status)) return;
        listener({
          type: 'status',
          data: { status: job.status, queue_position: null, outputs: job.outputs },
        });
      })
      .catch((err: unknown) => this.#o.onError?.(err));
    return () => {
      done = true;
      off();
    };
  }

  override close(): void {
    this.#o.subscriber.off('pmessageBuffer', this.#onMessage);
    super.close();
  }
}
