// One lease: the right to run one prompt on one instance, with its queued → running → released
// accounting. The owning instance is told about every transition; release is idempotent.
import type { ComfyClient } from '../comfy/index.ts';
import type { Lease, LeaseOutcome } from './types.ts';

/** What a lease reports to the instance it belongs to. */
export interface LeaseHost {
  readonly id: string;
  readonly url: string;
  readonly client: ComfyClient;
  leaseStarted(lease: PoolLease): void;
  leaseReleased(lease: PoolLease, outcome: LeaseOutcome): void;
}

/** The pool's Lease implementation. */
export class PoolLease implements Lease {
  readonly instanceId: string;
  readonly url: string;
  readonly client: ComfyClient;
  readonly signal: AbortSignal;
  readonly acquiredAt: number;
  started = false;
  released = false;

  readonly #host: LeaseHost;
  readonly #controller = new AbortController();

  constructor(host: LeaseHost, now: number) {
    this.#host = host;
    this.instanceId = host.id;
    this.url = host.url;
    this.client = host.client;
    this.signal = this.#controller.signal;
    this.acquiredAt = now;
  }

  /** The prompt left "queued on instance" and runs. */
  markStarted(): void {
    if (this.started || this.released) return;
    this.started = true;
    this.#host.leaseStarted(this);
  }

  /** Ends the lease; only the first call counts. */
  release(outcome: LeaseOutcome): void {
    if (this.released) return;
    this.released = true;
    this.#host.leaseReleased(this, outcome ?? { ok: true });
  }

  /** Tells the holder the instance is gone (the lease still has to be released). */
  abort(reason: Error): void {
    if (!this.released && !this.#controller.signal.aborted) this.#controller.abort(reason);
  }
}
