// Public surface of the pipeline module: definitions, the run service, stores and ports.
export type {
  DefinitionIssue,
  PipelineDefinition,
  PipelineLimits,
  StepDefinition,
} from './definition.ts';
export {
  DEFAULT_PIPELINE_LIMITS,
  PipelineDefinitionError,
  parsePipeline,
  readPipelineText,
} from './definition.ts';
export { InvalidInputsError, InvalidPipelineError, RunNotFoundError, TooManyRunsError } from './errors.ts';
export type { ExpressionLimits } from './expressions.ts';
export {
  DEFAULT_EXPRESSION_LIMITS,
  ExpressionCompiler,
  ExpressionError,
  isExpression,
} from './expressions.ts';
export { MemoryPipelineRunStore } from './memory-run-store.ts';
export type { FileRef, OutputSpec } from './outputs.ts';
export { extractOutputs, isFileRef, parseOutputSpecs } from './outputs.ts';
export type { CreateRunInput, PipelineRunnerOptions, RunView } from './pipeline-runner.ts';
export { PipelineRunner } from './pipeline-runner.ts';
export type {
  FileStager,
  JobsPort,
  RunWebhookEvent,
  RunWebhooks,
  StepTemplate,
  TemplateLookup,
} from './ports.ts';
export type {
  IterationRecord,
  IterationStatus,
  PipelineRun,
  RunError,
  RunRequest,
  RunStatus,
  StepState,
  StepStatus,
} from './run.ts';
export { isoTime, isRunTerminal, RUN_STATUSES, runHead } from './run.ts';
export type { RunEvent } from './run-events.ts';
export { RunEvents } from './run-events.ts';
export type { PipelineRunStore, RunListQuery, RunPage } from './run-store.ts';
export { decodeRunCursor, encodeRunCursor } from './run-store.ts';
export { SqlitePipelineRunStore } from './sqlite-run-store.ts';
export type { PipelineEntry, PipelineLoadError, PipelineRegistryOptions } from './pipeline-registry.ts';
export { PIPELINE_FILE, PipelineRegistry, templateLookup } from './pipeline-registry.ts';
