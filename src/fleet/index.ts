// Fleet mode (REDIS_URL set): several gateways share one job store and queue in Redis (BullMQ),
// split the ComfyUI instances between them with leases, and fan job events out over pub/sub.
// This file builds the Redis side for one gateway; FleetJobManager runs jobs on it. The seams for
// other stores (pipelines, models) are described in docs/scale-out.md.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { LoggerLike, PoolLike } from '../jobs/index.ts';
import { FleetEvents } from './events.ts';
import { type FleetKeys, fleetKeys } from './keys.ts';
import { LeasedPool } from './leased-pool.ts';
import { InstanceLeases } from './leases.ts';
import type { FleetParts } from './manager.ts';
import { FleetQueue } from './queue.ts';
import { RedisJobStore } from './redis-store.ts';

export { FleetEvents } from './events.ts';
export { type FleetKeys, fleetKeys } from './keys.ts';
export { LeasedPool } from './leased-pool.ts';
export { InstanceLeases } from './leases.ts';
export { type FleetParts, FleetJobManager, StoreUnavailableError } from './manager.ts';
export { FleetQueue } from './queue.ts';
export { RedisJobStore } from './redis-store.ts';

/** Settings of one fleet member. */
export interface FleetOptions {
  redisUrl: string;
  keyPrefix: string;
  /** Bound on how long a dead gateway keeps its instances and jobs. */
  leaseMs: number;
  pool: PoolLike;
  logger?: LoggerLike;
  /** Defaults to host:pid:random. */
  gatewayId?: string;
  /** How long to wait for Redis at start-up. */
  connectTimeoutMs?: number;
}

/** The Redis side of one gateway, and how to close it. */
export interface Fleet {
  parts: FleetParts;
  /** Closes the connections (after the manager closed). Idempotent. */
  close(): Promise<void>;
}

/** A REDIS_URL for logs: without its password. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://…';
  }
}

/** Connects to Redis and builds store, queue, leases and events; throws when Redis cannot be reached. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const logger = options.logger;
  const onError = (what: string) => (err: unknown) => logger?.warn({ err }, `fleet: ${what}`);
  const retryStrategy = (times: number) => Math.min(50 * 2 ** times, 1000);
  // Commands fail fast while Redis is away (submissions answer 503 at once); the store keeps
  // its writes and replays them on 'ready'.
  const command = new Redis(options.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy,
    connectionName: 'cgw-command',
  });
  const subscriber = new Redis(options.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy,
    connectionName: 'cgw-events',
  });
  const workerConnection = new Redis(options.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy,
    connectionName: 'cgw-worker',
  });
  const queueConnection = new Redis(options.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy,
    connectionName: 'cgw-queue',
  });
  const connections = [command, subscriber, workerConnection, queueConnection];
  let lastError: unknown = null;
  for (const c of connections) c.on('error', (err) => (lastError = err));
  const quit = async () => {
    await Promise.allSettled(connections.map((c) => c.quit().catch(() => c.disconnect())));
  };
  try {
    const deadline = AbortSignal.timeout(options.connectTimeoutMs ?? 5000);
    await Promise.race([
      Promise.all(connections.map((c) => c.connect())),
      new Promise((_, reject) =>
        deadline.addEventListener('abort', () => reject(lastError ?? new Error('timed out')), { once: true }),
      ),
    ]);
  } catch (err) {
    await quit();
    throw new Error(
      `REDIS_URL: cannot reach Redis at ${redactRedisUrl(options.redisUrl)} (${(err as Error)?.message ?? err})`,
    );
  }
  for (const c of connections) c.on('error', onError('redis connection error'));

  const keys: FleetKeys = fleetKeys(options.keyPrefix);
  const gatewayId = options.gatewayId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const store = new RedisJobStore({
    redis: command,
    keys,
    gatewayId,
    onError: onError('job store write failed'),
  });
  const pool = new LeasedPool(options.pool);
  const leases = new InstanceLeases({
    redis: command,
    keys,
    gatewayId,
    leaseMs: options.leaseMs,
    instances: () => pool.candidates(),
    onError: onError('lease heartbeat failed'),
  });
  const events = new FleetEvents({
    subscriber,
    keys,
    gatewayId,
    publish: (jobId, message) => store.publishEvent(jobId, message),
    watch: (id) => store.watch(id),
    absorb: (record) => store.absorb(record),
    onError: onError('event subscription failed'),
  });
  const lockMs = Math.floor(options.leaseMs * 0.75);
  const queue = new FleetQueue({
    connection: queueConnection,
    transactionConnection: command,
    workerConnection,
    keys,
    lockMs,
    stalledIntervalMs: Math.max(100, Math.floor(options.leaseMs / 4)),
    onError: onError('queue error'),
  });
  const parts: FleetParts = {
    store,
    queue,
    events,
    leases,
    pool,
    keys,
    gatewayId,
    leaseMs: options.leaseMs,
    subscriber,
  };
  let closing: Promise<void> | null = null;
  return {
    parts,
    close() {
      closing ??= quit();
      return closing;
    },
  };
}
