// Public surface of io: job inputs (fetch, check, cache, upload, rewrite), content-addressed assets,
// output delivery (link, inline, storage), and the SSRF guard shared with webhooks.
export { AssetStore } from './assets/asset-store.ts';
export type { AssetMetadata, AssetRecord, PendingBlob } from './assets/asset-store.ts';
export type { ApiPrompt, IoComfyClient, NodeDef, OutputFile, RunResult } from './comfy-types.ts';
export {
  AssetNotFoundError,
  AssetQuotaError,
  HashMismatchError,
  InlineTooLargeError,
  InputFetchError,
  InputInvalidError,
  InputTooLargeError,
  InputTooManyPixelsError,
  InputTooSlowError,
  InputTypeRejectedError,
  InputUnreadableError,
  IoAbortError,
  IoError,
  MissingAssetError,
  OutputConfigError,
  OutputFetchError,
  OutputStorageError,
  PayloadTooLargeError,
  StorageFullError,
  UrlForbiddenError,
} from './errors.ts';
export type { UrlCredential } from './inputs/credentials.ts';
export { fileInputsOf, isResolvableString } from './inputs/file-inputs.ts';
export { InputResolver, PrefetchedInputs } from './inputs/input-resolver.ts';
export type {
  InputResolverOptions,
  IoLogger,
  ResolvedUpload,
  ResolveOptions,
} from './inputs/input-resolver.ts';
export { mimeFromName, sniffMediaType } from './media-type.ts';
export type { MediaType } from './media-type.ts';
export type { DeliveredOutput, JobOutput, OutputStore, OutputType } from './outputs/job-output.ts';
export { type LinkOptions, linkOutputs, outputContentPath, outputLink } from './outputs/output-link.ts';
export { createSsrfGuard, isSafeUrl, redactUrl, SsrfGuard } from './ssrf-guard.ts';
export type { LookupFunction, SsrfGuardOptions } from './ssrf-guard.ts';
export { createImageConverter, isConvertible, renameForFormat } from './outputs/convert.ts';
export type { ImageFormat } from './outputs/convert.ts';
export { loadSharp } from './lazy-modules.ts';
export { OutputDelivery, outputKey } from './outputs/output-delivery.ts';
export type { DeliverOptions, OutputDeliveryOptions } from './outputs/output-delivery.ts';
export { planOutputs } from './outputs/output-plan.ts';
export type { PlannedOutput } from './outputs/output-plan.ts';
export { createStorage } from './outputs/storage/create-storage.ts';
export type { StorageBackend, StoredLocation } from './outputs/storage/storage-backend.ts';
