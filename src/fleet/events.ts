// Job events across the fleet: whatever a gateway emits for a job it runs also goes to the
// gateways that watch the job: the one that admitted it (named at admission) and any that
// subscribed to it since (each lists itself on the job's record with one script, which also
// answers the job's status). The runner's store publishes a job's events of one flush as one
// message, by the script that saves the state they describe, to each watcher's inbox channel; so
// a gateway receives the events of the jobs it watches only (a pattern subscription to every
// job's channel made each of three gateways receive and decode every job's messages), and none of
// its own. The terminal status event of a job another gateway admitted carries the job's final
// record (without its workflow), so the admitting gateway, where its caller waits, has the end
// state without reading it back. A new watcher of a job another gateway runs gets its status in
// the same script (the whole record only when it ended), so a job that ended just before still
// delivers its terminal status; after the subscriber connection comes back (Redis restarted or
// the network failed), every watch is made again and checked the same way.
import type { Redis } from 'ioredis';
import { isTerminal, type JobEvent, JobEvents, type JobRecord, type JobStatus } from '../jobs/index.ts';
import type { FleetKeys } from './keys.ts';

/** Options of FleetEvents. */
export interface FleetEventsOptions {
  /** A connection in subscriber mode, owned by the caller. */
  subscriber: Redis;
  keys: FleetKeys;
  gatewayId: string;
  /** Publishes a job's event to its watchers after the job's state queued so far (RedisJobStore.publishEvent). */
  publish: (jobId: string, message: string) => void;
  /** Lists this gateway as watching a job; resolves with its stored record if it ended (RedisJobStore.watch). */
  watch: (id: string) => Promise<JobRecord | undefined>;
  /** Takes another gateway's final record of a job watched here (RedisJobStore.absorb). */
  absorb: (record: JobRecord) => void;
  onError?: (err: unknown) => void;
}

interface Envelope {
  e: JobEvent;
  /** With a terminal status event: the job's record as it ended, without its workflow. */
  r?: JobRecord;
}

/** JobEvents whose channels span every gateway of the fleet. */
export class FleetEvents extends JobEvents {
  readonly #o: FleetEventsOptions;
  readonly #inbox: string;
  readonly #ready: Promise<unknown>;
  /** Local subscribers of jobs other gateways may run, by job id: the watches made again on reconnect. */
  #remote = new Map<string, number>();
  /**
   * Of those, the streams (subscribers that hear more than the end), the last status heard of the
   * job and the last queue position sent to them: entries go with the job's last stream here.
   */
  #remoteStreams = new Map<string, { streams: number; status: JobStatus | null; position: number | null }>();
  #connected = true;
  #closed = false;
  #isLocal: (id: string) => boolean = () => false;
  #finalRecord: (id: string) => JobRecord | undefined = () => undefined;

  constructor(options: FleetEventsOptions) {
    super();
    this.#o = options;
    this.#inbox = options.keys.inbox(options.gatewayId);
    // The Buffer event: ioredis decodes a message to a string only for 'message' listeners, and a
    // message for a job nobody here watches any more is dropped before that.
    options.subscriber.on('messageBuffer', this.#onMessage);
    options.subscriber.on('close', this.#onClose);
    options.subscriber.on('ready', this.#onReady);
    this.#ready = options.subscriber.subscribe(this.#inbox);
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

  /** Resolves once the inbox subscription is in place. */
  ready(): Promise<unknown> {
    return this.#ready;
  }

  #onMessage = (channelBuffer: Buffer, message: Buffer): void => {
    if (channelBuffer.toString() !== this.#inbox) return;
    const newline = message.indexOf(10);
    if (newline < 0) return;
    const jobId = message.toString('utf8', 0, newline);
    if (super.listenerCount(jobId) === 0) return;
    let envelopes: Envelope | Envelope[];
    try {
      // One event, or the events of one flush together.
      envelopes = JSON.parse(message.toString('utf8', newline + 1)) as Envelope | Envelope[];
    } catch {
      return;
    }
    const streamed = this.#remoteStreams.get(jobId);
    for (const envelope of Array.isArray(envelopes) ? envelopes : [envelopes]) {
      // The final record first: a watcher woken by the terminal event reads it from memory.
      if (envelope.r?.id === jobId) this.#o.absorb(envelope.r);
      if (streamed && envelope.e.type === 'status') streamed.status = envelope.e.data.status;
      super.emit(jobId, envelope.e);
    }
  };

  #onClose = (): void => {
    this.#connected = false;
  };

  /**
   * The subscriber is back (ioredis subscribes to the inbox again): messages published meanwhile
   * are lost, and Redis may have lost the watch lists, so once the inbox subscription is in place
   * every watch is made again, and a job that ended meanwhile delivers its terminal status to its
   * subscribers here.
   */
  #onReady = (): void => {
    if (this.#connected || this.#closed) return;
    this.#connected = true;
    this.#o.subscriber
      .subscribe(this.#inbox)
      .then(() => {
        for (const jobId of this.#remote.keys()) void this.#rewatch(jobId);
      })
      .catch((err: unknown) => this.#o.onError?.(err));
  };

  /** Watches a job again until Redis answers (the command connection may be back later), while subscribed here. */
  async #rewatch(jobId: string): Promise<void> {
    for (let delay = 100; this.#remote.has(jobId) && !this.#closed; delay = Math.min(delay * 2, 2000)) {
      try {
        const job = await this.#o.watch(jobId);
        if (job && isTerminal(job.status) && super.listenerCount(jobId) > 0) super.emit(jobId, endOf(job));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  /** Delivers locally and publishes to the fleet. */
  override emit(jobId: string, event: JobEvent): void {
    super.emit(jobId, event);
    const envelope: Envelope = { e: event };
    if (event.type === 'status' && isTerminal(event.data.status)) {
      const record = this.#finalRecord(jobId);
      if (record && isTerminal(record.status))
        envelope.r = { ...record, workflow: undefined } as unknown as JobRecord;
    }
    this.#o.publish(jobId, JSON.stringify(envelope));
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
    this.#remote.set(jobId, (this.#remote.get(jobId) ?? 0) + 1);
    const stream = options.endOnly !== true;
    if (stream) {
      const entry = this.#remoteStreams.get(jobId);
      if (entry) entry.streams++;
      else this.#remoteStreams.set(jobId, { streams: 1, status: null, position: null });
    }
    const end = () => {
      if (done) return;
      done = true;
      const left = (this.#remote.get(jobId) ?? 1) - 1;
      if (left > 0) this.#remote.set(jobId, left);
      else this.#remote.delete(jobId);
      const entry = stream ? this.#remoteStreams.get(jobId) : undefined;
      if (entry && --entry.streams === 0) this.#remoteStreams.delete(jobId);
      off();
    };
    signal?.addEventListener('abort', end, { once: true });
    this.#o
      .watch(jobId)
      .then((job) => {
        if (!done && job && isTerminal(job.status)) listener(endOf(job));
      })
      .catch((err: unknown) => this.#o.onError?.(err));
    return end;
  }

  /**
   * Jobs another gateway may run that streams here follow and that are waiting as far as this
   * gateway heard (no status since the stream opened, or `queued`): the ones to send positions.
   */
  remoteWaiting(): string[] {
    const ids: string[] = [];
    for (const [id, entry] of this.#remoteStreams)
      if ((entry.status === null || entry.status === 'queued') && !this.#isLocal(id)) ids.push(id);
    return ids;
  }

  /**
   * A job's position in the fleet's queue, read for remoteWaiting(): sent to its streams here (only
   * here: every gateway reads it for its own) when it changed and the job still waits as heard.
   */
  notePosition(jobId: string, position: number): void {
    const entry = this.#remoteStreams.get(jobId);
    if (!entry || entry.position === position || (entry.status !== null && entry.status !== 'queued')) return;
    entry.position = position;
    super.emit(jobId, { type: 'status', data: { status: 'queued', queue_position: position } });
  }

  override close(): void {
    this.#o.subscriber.off('messageBuffer', this.#onMessage);
    this.#o.subscriber.off('close', this.#onClose);
    this.#o.subscriber.off('ready', this.#onReady);
    this.#closed = true;
    this.#remote.clear();
    this.#remoteStreams.clear();
    super.close();
  }
}

/** The terminal status event of a job that ended. */
function endOf(job: JobRecord): JobEvent {
  return { type: 'status', data: { status: job.status, queue_position: null, outputs: job.outputs } };
}
