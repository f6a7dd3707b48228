// Prometheus metrics of the pool: per-instance health and load (read at scrape time) and counters
// for failovers, breaker transitions and WebSocket reconnects (fed by the pool's events).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Pool } from './pool.ts';
import type { InstanceState } from './types.ts';

const STATES: readonly InstanceState[] = ['starting', 'healthy', 'degraded', 'unhealthy', 'draining'];
const registered = new WeakMap<Registry, WeakSet<Pool>>();

/** Registers the pool's metrics on a registry (once per registry and pool); returns an unsubscribe function. */
export function registerPoolMetrics(registry: Registry, pool: Pool, prefix = 'comfy_gateway_'): () => void {
  const pools = registered.get(registry) ?? new WeakSet<Pool>();
  registered.set(registry, pools);
  if (pools.has(pool)) return () => undefined;
  pools.add(pool);
  const registers = [registry];

  new Gauge({
    name: `${prefix}instance_healthy`,
    help: 'Whether the ComfyUI instance takes new jobs (1) or not (0).',
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list()) this.set({ instance: s.id }, s.state === 'healthy' ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}instance_state`,
    help: 'Current state of each ComfyUI instance (1 for the current state).',
    labelNames: ['instance', 'state'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list()) {
        for (const state of STATES) this.set({ instance: s.id, state }, s.state === state ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: `${prefix}instance_jobs`,
    help: 'Jobs leased on each instance, by phase (running, or queued on the instance).',
    labelNames: ['instance', 'phase'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list()) {
        this.set({ instance: s.id, phase: 'running' }, s.running);
        this.set({ instance: s.id, phase: 'queued' }, s.queued);
      }
    },
  });
  new Gauge({
    name: `${prefix}instance_max_jobs`,
    help: 'Concurrent job slots of each instance.',
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list()) this.set({ instance: s.id }, s.maxJobs);
    },
  });
  new Gauge({
    name: `${prefix}instance_comfy_queue_remaining`,
    help: "ComfyUI's own queue depth (queue_remaining of its last status message).",
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list())
        if (s.comfyQueueRemaining !== null) this.set({ instance: s.id }, s.comfyQueueRemaining);
    },
  });
  new Gauge({
    name: `${prefix}instance_health_check_latency_seconds`,
    help: 'Rolling average round trip of the health check.',
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list()) if (s.latencyMs !== null) this.set({ instance: s.id }, s.latencyMs / 1000);
    },
  });
  new Gauge({
    name: `${prefix}instance_breaker_open`,
    help: 'Circuit breaker position of each instance: 0 closed, 0.5 half-open, 1 open.',
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset();
      for (const s of pool.list()) {
        this.set({ instance: s.id }, s.breaker === 'closed' ? 0 : s.breaker === 'half-open' ? 0.5 : 1);
      }
    },
  });
  const failovers = new Counter({
    name: `${prefix}instance_failovers_total`,
    help: 'Leases released with an infrastructure failure (their job is retried elsewhere).',
    labelNames: ['instance'],
    registers,
  });
  const transitions = new Counter({
    name: `${prefix}instance_breaker_transitions_total`,
    help: 'Circuit breaker transitions, by the position entered.',
    labelNames: ['instance', 'to'],
    registers,
  });
  const reconnects = new Counter({
    name: `${prefix}instance_websocket_reconnects_total`,
    help: 'WebSocket reconnections to each instance.',
    labelNames: ['instance'],
    registers,
  });

  const onFailover = ({ instanceId }: { instanceId: string }): void =>
    failovers.inc({ instance: instanceId });
  const onBreaker = ({ instanceId, position }: { instanceId: string; position: string }): void =>
    transitions.inc({ instance: instanceId, to: position });
  const onReconnect = ({ instanceId }: { instanceId: string }): void =>
    reconnects.inc({ instance: instanceId });
  const onRemoved = ({ instanceId }: { instanceId: string }): void => {
    // Forget removed instances so label sets stay bounded by the live fleet.
    failovers.remove({ instance: instanceId });
    reconnects.remove({ instance: instanceId });
    for (const to of ['open', 'half-open', 'closed']) transitions.remove({ instance: instanceId, to });
  };
  pool.on('failover', onFailover);
  pool.on('breaker', onBreaker);
  pool.on('reconnect', onReconnect);
  pool.on('removed', onRemoved);
  for (const s of pool.list()) {
    failovers.inc({ instance: s.id }, 0);
    reconnects.inc({ instance: s.id }, 0);
  }
  return () => {
    pool.off('failover', onFailover);
    pool.off('breaker', onBreaker);
    pool.off('reconnect', onReconnect);
    pool.off('removed', onRemoved);
  };
}
