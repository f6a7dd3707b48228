// Public surface of the ComfyUI client SDK (`comfy-gateway/comfy`). Other modules import only from here.
export {
  ComfyAbortError,
  ComfyArgumentError,
  ComfyClosedError,
  ComfyConnectionError,
  ComfyError,
  ComfyExecutionError,
  ComfyInterruptedError,
  ComfyServerError,
  ComfyTimeoutError,
  ComfyValidationError,
} from './errors.ts';
export type { ComfyErrorContext, ComfyValidationDetail } from './errors.ts';
export { collectOutputs, outputKind, sortNodeIds } from './history.ts';
export { decodeBinaryFrame, encodePreviewFrame, isBlockedExecution, parseTextMessage } from './messages.ts';
export type { BinaryFrame, ComfyMessage, ExecutionErrorData, NodeProgressState } from './messages.ts';
export type * from './types.ts';
export { ComfyClient, isComfyError } from './client.ts';
export type { ComfyClientContract, ComfyClientEvents } from './client.ts';
export type { OutputSink } from './downloads.ts';
export type { DownloadOptions, ViewOptions } from './files-api.ts';
export { type ScopedSignal, scopedSignal } from './deadline.ts';
export { ObjectInfoCache } from './object-info-cache.ts';
export { contentTypeFor } from './upload.ts';
export type { UploadData } from './upload.ts';
