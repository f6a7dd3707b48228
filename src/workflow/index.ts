// Public surface of the workflow module: UI→API conversion, format detection, prompt inspection,
// validation (ComfyUI's own, and the Python value model it runs on), overrides and named templates.
// Pure functions, no I/O, except ConvertPool, which runs large conversions on worker threads, and
// WorkflowRegistry, which reads and watches the templates folder (through FolderScanner).
export { DEFAULT_MAX_NODES, toApiPrompt } from './convert.ts';
export type { ConvertPoolOptions, JsonSource, PoolConvertOptions } from './convert-pool.ts';
export { ConvertBusyError, ConvertPool, ConvertTimeoutError } from './convert-pool.ts';
export { detectFormat, isApiPrompt, isUiWorkflow } from './detect.ts';
export {
  NodeDefsMissingError,
  OverrideError,
  PromptValidationError,
  TemplateError,
  TemplateParamsError,
  WorkflowConversionError,
  WorkflowError,
  WorkflowFormatError,
  WorkflowTooLargeError,
} from './errors.ts';
export type { FileInput, ModelInput, ParameterCandidate, PromptInspection } from './inspect.ts';
export { inspectPrompt } from './inspect.ts';
export type { Overrides } from './overrides.ts';
export { applyOverrides, findNodes } from './overrides.ts';
export type {
  ParseTemplateOptions,
  TemplateParameter,
  TemplateParamType,
  TemplateTarget,
  WorkflowTemplate,
} from './template.ts';
export { applyTemplate, parseTemplate, templateRequestSchema } from './template.ts';
export { assertValidPrompt, validatePrompt } from './validate.ts';
export type { FolderScannerOptions } from './folder-scanner.ts';
export { FolderScanner } from './folder-scanner.ts';
export type {
  RegistryChange,
  TemplateEntry,
  TemplateLoadError,
  WorkflowRegistryOptions,
} from './workflow-registry.ts';
export { WorkflowRegistry } from './workflow-registry.ts';
export type { ComfyRejection } from './comfy-rejections.ts';
export { certainRejection } from './comfy-rejections.ts';
export type {
  ComfyErrorEntry,
  ComfyNodeError,
  ComfyValidation,
  ComfyValidationOptions,
} from './comfy-validate.ts';
export { comfyError, validateComfyPrompt } from './comfy-validate.ts';
export {
  KEY_ORDER,
  keysOf,
  ordered,
  PyFloat,
  pyFloatRepr,
  pyKeys,
  pyRepr,
  pyReprString,
  pySet,
  pyStr,
  toNumber,
} from './py-values.ts';
export type {
  ApiLink,
  ApiNode,
  ApiPrompt,
  ConversionIssue,
  ConversionResult,
  ConvertOptions,
  InputSpec,
  IssueSeverity,
  NodeDef,
  NodeDefs,
} from './types.ts';
