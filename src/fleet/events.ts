// Job events across the fleet: whatever a gateway emits for a job it runs is also published on
// the job's Redis channel (through the store's write pipeline, so after the state it describes),
// and a gateway whose clients watch a job it does not run subscribes to that channel while they
// watch. After the subscription is confirmed the record is read once more, so a job that ended
// before the subscription took hold still delivers its terminal status.
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
  /** Reads the stored record (after a subscription took hold). */
  load: (id: string) => Promise<JobRecord | undefined>;
  onError?: (err: unknown) => void;
}

interface Envelope {
  g: string;
  e: JobEvent;
}

/** JobEvents whose channels span every gateway of the fleet. */
export class FleetEvents extends JobEvents {
  readonly #o: FleetEventsOptions;
  readonly #prefix: string;
  /** Subscribed channels: job id → local watchers and the SUBSCRIBE in flight. */
  #channels = new Map<string, { watchers: number; ready: Promise<unknown> }>();

  constructor(options: FleetEventsOptions) {
    super();
    this.#o = options;
    this.#prefix = options.keys.events('');
    options.subscriber.on('message', this.#onMessage);
  }

  #onMessage = (channel: string, message: string): void => {
    if (!channel.startsWith(this.#prefix)) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch {
      return;
    }
    // Our own events reached our watchers when we emitted them.
    if (envelope.g === this.#o.gatewayId) return;
    super.emit(channel.slice(this.#prefix.length), envelope.e);
  };

  /** Delivers locally and publishes to the fleet. */
  override emit(jobId: string, event: JobEvent): void {
    super.emit(jobId, event);
    this.#o.publish(this.#o.keys.events(jobId), JSON.stringify({ g: this.#o.gatewayId, e: event }));
  }

  /** Watchers may sit on any gateway: the manager emits as if someone always listens. */
  override listenerCount(jobId: string): number {
    return super.listenerCount(jobId) + 1;
  }

  /** Local watchers of one job. */
  localListenerCount(jobId: string): number {
    return super.listenerCount(jobId);
  }

  override subscribe(jobId: string, listener: (event: JobEvent) => void, signal?: AbortSignal): () => void {
    const off = super.subscribe(jobId, listener, signal);
    if (signal?.aborted) return off;
    let channel = this.#channels.get(jobId);
    if (!channel) {
      const ready = this.#o.subscriber.subscribe(this.#o.keys.events(jobId));
      channel = { watchers: 0, ready };
      this.#channels.set(jobId, channel);
    }
    channel.watchers++;
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      off();
      signal?.removeEventListener('abort', release);
      const current = this.#channels.get(jobId);
      if (current && --current.watchers === 0) {
        this.#channels.delete(jobId);
        this.#o.subscriber
          .unsubscribe(this.#o.keys.events(jobId))
          .catch((err: unknown) => this.#o.onError?.(err));
      }
    };
    signal?.addEventListener('abort', release, { once: true });
    channel.ready
      .then(() => (done ? undefined : this.#o.load(jobId)))
      .then((job) => {
        if (done || !job || !isTerminal(job.status)) return;
        listener({
          type: 'status',
          data: { status: job.status, queue_position: null, outputs: job.outputs },
        });
      })
      .catch((err: unknown) => this.#o.onError?.(err));
    return release;
  }

  override close(): void {
    this.#o.subscriber.off('message', this.#onMessage);
    this.#channels.clear();
    super.close();
  }
}
