// Builds v2 Output objects for `link` delivery from a RunResult: the bytes stay on the instance and
// the gateway streams them from /api/v2/jobs/{id}/outputs/{n}/content (used until, and alongside,
// io's OutputDelivery for the other delivery modes).
import { extname } from 'node:path';
import type { JobOutput, OutputSource } from './job.ts';
import type { RunResult } from './ports.ts';

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.flac': 'audio/flac',
  '.ogg': 'audio/ogg',
  '.opus': 'audio/opus',
  '.txt': 'text/plain',
  '.json': 'application/json',
  '.glb': 'model/gltf-binary',
  '.safetensors': 'application/octet-stream',
};

/** MIME type guessed from a file name. */
export function contentTypeOf(filename: string): string {
  return MIME[extname(filename).toLowerCase()] ?? 'application/octet-stream';
}

/** Path (host-relative) of a job output's content. */
export function outputContentPath(jobId: string, index: number): string {
  return `/api/v2/jobs/${jobId}/outputs/${index}/content`;
}

/** Link outputs and their sources for every file of a result, in node order. */
export function linkOutputs(
  jobId: string,
  instanceId: string,
  result: RunResult,
  expiresAt: number,
): { outputs: JobOutput[]; sources: OutputSource[] } {
  const outputs: JobOutput[] = [];
  const sources: OutputSource[] = [];
  result.outputs.forEach((file, index) => {
    outputs.push({
      node_id: file.nodeId,
      name: file.filename,
      type: file.kind,
      content_type: contentTypeOf(file.filename),
      size_bytes: 0,
      id: `${jobId}.${index}`,
      hash: null,
      url: outputContentPath(jobId, index),
      url_expires_at: new Date(expiresAt).toISOString(),
      job_id: jobId,
      subfolder: file.subfolder,
      comfy_type: file.type,
    });
    sources.push({ instanceId, filename: file.filename, subfolder: file.subfolder, type: file.type });
  });
  return { outputs, sources };
}
