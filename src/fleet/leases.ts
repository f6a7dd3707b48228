// Instance leases: each ComfyUI instance is driven by exactly one gateway at a time. A lease is a
// Redis key (value = gateway id) set with NX and a TTL, renewed by a heartbeat; a gateway that
// dies stops renewing and its leases expire, so within INSTANCE_LEASE_MS another gateway holds
// them. Gateways announce themselves in a sorted set scored by their heartbeat; each aims at its
// share (ceil(instances / live gateways)), takes unowned instances and gives back idle extras,
// so a new gateway gets instances without any running prompt changing hands.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { FleetKeys } from './keys.ts';

// KEYS: lease. ARGV: gateway id, TTL ms. 1 when renewed, 0 when someone else holds it or it lapsed.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// KEYS: lease. ARGV: gateway id.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type LeaseRedis = Redis & {
  cgwRenew(key: string, owner: string, ttl: number): Promise<number>;
  cgwRelease(key: string, owner: string): Promise<number>;
};

/** What the leases need to know about an instance. */
export interface LeaseCandidate {
  id: string;
  /** True when this gateway runs nothing on it (it may be given back). */
  idle: boolean;
}

/** Options of InstanceLeases. */
export interface InstanceLeasesOptions {
  redis: Redis;
  keys: FleetKeys;
  gatewayId: string;
  /** The bound: a dead gateway's instances are held by others within this time. */
  leaseMs: number;
  instances: () => LeaseCandidate[];
  onError?: (err: unknown) => void;
  clock?: () => number;
}

/** Events: 'change' (owned ids) whenever the set of leased instances changes. */
export class InstanceLeases extends EventEmitter {
  readonly #redis: LeaseRedis;
  readonly #o: InstanceLeasesOptions;
  readonly #ttlMs: number;
  readonly #tickMs: number;
  #owned = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: InstanceLeasesOptions) {
    super();
    this.#o = options;
    this.#redis = options.redis as LeaseRedis;
    if (typeof this.#redis.cgwRenew !== 'function') {
      this.#redis.defineCommand('cgwRenew', { numberOfKeys: 1, lua: RENEW });
      this.#redis.defineCommand('cgwRelease', { numberOfKeys: 1, lua: RELEASE });
    }
    // Expiry plus one missed check fits in the bound; two renewals may fail before a lease lapses.
    this.#ttlMs = Math.floor(options.leaseMs * 0.75);
    this.#tickMs = Math.max(50, Math.floor(options.leaseMs / 4));
  }

  /** Instances this gateway may drive now. */
  get owned(): ReadonlySet<string> {
    return this.#owned;
  }

  /** Runs the first round (so a starting gateway has its share), then heartbeats. */
  async start(): Promise<void> {
    await this.tick();
    this.#arm();
    // The others rebalance now rather than at their next heartbeat.
    await this.#nudge();
  }

  /** Tells the other gateways that leases changed hands (they run a round at once). */
  async #nudge(): Promise<void> {
    try {
      await this.#redis.publish(this.#o.keys.control, JSON.stringify({ leases: this.#o.gatewayId }));
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  #arm(): void {
    if (this.#closing) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.tick().finally(() => this.#arm());
    }, this.#tickMs);
    this.#timer.unref();
  }

  /** One heartbeat: announce, renew, rebalance. Never rejects. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick()
      .catch((err: unknown) => {
        this.#o.onError?.(err);
      })
      .finally(() => {
        this.#ticking = null;
      });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    if (this.#closing) return;
    const { keys, gatewayId } = this.#o;
    const now = (this.#o.clock ?? Date.now)();
    const instances = this.#o.instances();
    const known = new Set(instances.map((i) => i.id));
    const before = [...this.#owned].sort().join(',');
    const owned = [...this.#owned];
    const pipeline = this.#redis.pipeline() as ReturnType<Redis['pipeline']> & {
      cgwRenew(key: string, owner: string, ttl: number): unknown;
    };
    pipeline.zadd(keys.gateways, now, gatewayId);
    pipeline.zremrangebyscore(keys.gateways, '-inf', now - this.#o.leaseMs);
    pipeline.zcard(keys.gateways);
    for (const id of owned) pipeline.cgwRenew(keys.lease(id), gatewayId, this.#ttlMs);
    const results = (await pipeline.exec()) ?? [];
    const [countErr, count] = results[2] ?? [new Error('no reply')];
    if (countErr) throw countErr;
    owned.forEach((id, i) => {
      const [err, renewed] = results[3 + i] ?? [new Error('no reply')];
      // A lapsed lease (a long pause, Redis away) is someone else's now, or free to take again.
      if (!err && renewed !== 1) this.#owned.delete(id);
    });
    for (const id of this.#owned) if (!known.has(id)) this.#owned.delete(id);
    const gateways = Math.max(1, Number(count));
    const share = Math.ceil(instances.length / gateways);
    let released = false;
    if (this.#owned.size > share) {
      // Give back idle extras only: running prompts never change hands by rebalancing.
      for (const instance of instances) {
        if (this.#owned.size <= share) break;
        if (!this.#owned.has(instance.id) || !instance.idle) continue;
        this.#owned.delete(instance.id);
        await this.#redis.cgwRelease(keys.lease(instance.id), gatewayId);
        released = true;
      }
    } else if (this.#owned.size < share) {
      // A per-gateway order, so gateways starting together reach for different instances first.
      const order = instances
        .filter((i) => !this.#owned.has(i.id))
        .map((i) => ({ id: i.id, rank: createHash('sha1').update(`${gatewayId}/${i.id}`).digest('hex') }))
        .sort((a, b) => (a.rank < b.rank ? -1 : 1));
      for (const { id } of order) {
        if (this.#owned.size >= share || this.#closing) break;
        const ok = await this.#redis.set(keys.lease(id), gatewayId, 'PX', this.#ttlMs, 'NX');
        if (ok === 'OK') this.#owned.add(id);
      }
    }
    const after = [...this.#owned].sort().join(',');
    if (after !== before) this.emit('change', new Set(this.#owned));
    if (released) await this.#nudge();
  }

  /** Stops heartbeats and gives every lease back so other gateways take over at once. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      await this.#ticking;
      const owned = [...this.#owned];
      this.#owned.clear();
      if (owned.length > 0) this.emit('change', new Set<string>());
      try {
        const pipeline = this.#redis.pipeline() as ReturnType<Redis['pipeline']> & {
          cgwRelease(key: string, owner: string): unknown;
        };
        for (const id of owned) pipeline.cgwRelease(this.#o.keys.lease(id), this.#o.gatewayId);
        pipeline.zrem(this.#o.keys.gateways, this.#o.gatewayId);
        await pipeline.exec();
        await this.#nudge();
      } catch (err) {
        this.#o.onError?.(err);
      }
    })();
    return this.#closing;
  }
}
