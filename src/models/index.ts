// Public surface of the models module: model downloads into the shared models folder (tasks,
// progress, dedup, checksums, resume, TTL), their stores, and the model folder rules.
export type { DownloadStatus, DownloadTask } from './download-task.ts';
export { DOWNLOAD_STATUSES, isFinished, redactModelUrl, renderTask } from './download-task.ts';
export {
  DownloadConflictError,
  DownloadFailedError,
  DownloadNotFoundError,
  InvalidDownloadError,
  ModelsDirUnsetError,
  ModelsError,
  ModelUrlForbiddenError,
  TooManyDownloadsError,
} from './errors.ts';
export type { DownloadGuard, HostToken, TransferOptions, TransferResult } from './file-transfer.ts';
export { tokenHeaders, transferFile } from './file-transfer.ts';
export {
  checkFilename,
  checkFolder,
  filenameFromUrl,
  folderOf,
  isModelFolder,
  MODEL_FOLDERS,
} from './folders.ts';
export type {
  DownloadRequest,
  ModelDownloadsEvents,
  ModelDownloadsOptions,
  ModelsLogger,
} from './model-downloads.ts';
export { ModelDownloads } from './model-downloads.ts';
export type { ModelSource, ModelStore } from './model-store.ts';
export { MemoryModelStore } from './model-store.ts';
export { SqliteModelStore } from './sqlite-model-store.ts';
export type { LocalModelFile } from './model-index.ts';
export { comboChoices, listModelFiles, modelsInDefs } from './model-index.ts';
export { extraModelPathsYaml, writeExtraModelPaths } from './extra-model-paths.ts';
