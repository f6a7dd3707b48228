// Public surface of the workflow module: UI→API conversion, format detection, prompt inspection,
// validation, overrides and named templates. Pure functions, no I/O.
export { toApiPrompt } from './convert.ts';
export { detectFormat, isApiPrompt, isUiWorkflow } from './detect.ts';
export {
  OverrideError,
  PromptValidationError,
  TemplateError,
  TemplateParamsError,
  WorkflowConversionError,
  WorkflowError,
  WorkflowFormatError,
} from './errors.ts';
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
