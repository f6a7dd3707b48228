// Public surface of the pool module: many ComfyUI instances as one (routing, health, failover,
// managed processes), plus its configuration helpers and metrics.
export type {
  AcquireRequest,
  BreakerPosition,
  InstanceConfig,
  InstanceMemory,
  InstanceSnapshot,
  InstanceState,
  Lease,
  LeaseOutcome,
  ManagedProcessesOptions,
  PoolOptions,
} from './types.ts';
export { Pool, type PoolContract, type PoolEvents } from './pool.ts';
export {
  normaliseUrl,
  parseInstanceList,
  parsePortList,
  resolveInstanceConfig,
  splitCommand,
} from './config.ts';
export { ManagedProcess, type ManagedProcessOptions, type ManagedProcessState } from './managed-process.ts';
export { registerPoolMetrics } from './metrics.ts';
export {
  InstanceDownError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInstanceConfigError,
  ManagedProcessError,
  PoolClosedError,
  PoolError,
} from './errors.ts';
