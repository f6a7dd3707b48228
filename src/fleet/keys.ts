// Names of every Redis key and channel of one fleet, all under REDIS_KEY_PREFIX, so several fleets
// (or parallel tests) can share one Redis without seeing each other.

/** The keys of one fleet. */
export interface FleetKeys {
  readonly prefix: string;
  /**
   * Hash of one job: s = status, d = state JSON (no workflow), w = workflow JSON, c = cancel asked,
   * g = the gateways that watch its events (comma-separated ids: the one that admitted it, and
   * any that streamed or waited for it since).
   */
  job(id: string): string;
  /** Sorted set of job ids scored by created_at (listing). */
  readonly index: string;
  /** Idempotency claim (value = job id, PX = 24 h). */
  idempotency(key: string): string;
  /** Instance lease (value = gateway id, PX = lease TTL). */
  lease(instanceId: string): string;
  /** Webhook outbox: hash of job id → gateway delivering its pending webhook. */
  readonly webhooks: string;
  /** Jobs run without a queue entry: hash of job id → the gateway that admitted and runs it. */
  readonly running: string;
  /** Sorted set of live gateway ids scored by their last heartbeat (ms). */
  readonly gateways: string;
  /** Pub/sub channel of one gateway: the events of the jobs it watches that other gateways run. */
  inbox(gatewayId: string): string;
  /** Pub/sub channel of fleet commands (cancel). */
  readonly control: string;
  /** BullMQ's own prefix (its keys are `<bullPrefix>:<queue>:…`). */
  readonly bullPrefix: string;
  /** Name of the shared BullMQ queue. */
  readonly queueName: string;
}

/** The key layout for `prefix`. */
export function fleetKeys(prefix: string): FleetKeys {
  return {
    prefix,
    job: (id) => `${prefix}:job:${id}`,
    index: `${prefix}:jobs`,
    idempotency: (key) => `${prefix}:idem:${key}`,
    lease: (instanceId) => `${prefix}:lease:${instanceId}`,
    webhooks: `${prefix}:hooks`,
    running: `${prefix}:running`,
    gateways: `${prefix}:gateways`,
    inbox: (gatewayId) => `${prefix}:in:${gatewayId}`,
    control: `${prefix}:ctl`,
    bullPrefix: `${prefix}:bull`,
    queueName: 'jobs',
  };
}
