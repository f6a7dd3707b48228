// Public surface of the job layer: the manager, stores, state machine, events and errors.
export {
  IdempotencyKeyReuseError,
  InvalidRequestError,
  InvalidTransitionError,
  InvalidWorkflowError,
  JobNotFoundError,
  NoInstanceAvailableError,
  QueueFullError,
  ShuttingDownError,
  StorageUnavailableError,
  ConversionBusyError,
  StoreOpenError,
  TooManyNodesError,
  WorkflowFormatUiError,
} from './errors.ts';
export type { JobEvent } from './events.ts';
export { JobEvents } from './events.ts';
export type {
  Attempt,
  JobError,
  JobOutput,
  JobRecord,
  JobRequest,
  JobStatus,
  JobWebhookDelivery,
  OutputOptions,
  OutputSource,
  Progress,
} from './job.ts';
export {
  canTransition,
  countByStatus,
  isTerminal,
  JOB_STATUSES,
  newJob,
  recordAttempt,
  TERMINAL_STATUSES,
  transition,
} from './job.ts';
export type {
  JobManagerEvents,
  JobManagerOptions,
  LiveInfo,
  SubmitInput,
  WaitingReason,
} from './manager.ts';
export { terminalEvent } from './job-webhooks.ts';
export { JobManager } from './manager.ts';
export { MemoryJobStore } from './memory-store.ts';
export { outputContentPath } from '../io/index.ts';
export { contentTypeOf } from './outputs.ts';
export type {
  ApiPrompt,
  ComfyClientLike,
  InputResolverLike,
  LeaseLike,
  LoggerLike,
  ModelProvisionLike,
  NodeDefs,
  OutputDeliveryLike,
  PoolLike,
  RunEvent,
  RunResult,
  WebhookDispatcherLike,
} from './ports.ts';
export { jobErrorFrom } from './runner.ts';
export { type QueueEntry, Scheduler } from './scheduler.ts';
export { SqliteJobStore } from './sqlite-store.ts';
export type { JobPage, JobStore, ListQuery, StoreHealth } from './store.ts';
export { decodeCursor, encodeCursor, FACADE_METADATA_KEY, hasMetadataKey, pageOf } from './store.ts';
export type { ConvertCall, PrepareOptions } from './prepare.ts';
export { applyOverrides, checkApiPrompt, checkNodeCount, isUiFormat, prepareWorkflow } from './prepare.ts';
export { type ScopedSignal, scopedSignal } from '../comfy/index.ts';
