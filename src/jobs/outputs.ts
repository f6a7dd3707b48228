// Builds v2 Output objects for `link` delivery from a RunResult: the bytes stay on the instance and
// the gateway streams them from /api/v2/jobs/{id}/outputs/{n}/content (used until, and alongside,
// io's OutputDelivery for the other delivery modes).
import { contentTypeFor } from '../comfy/index.ts';
import type { JobOutput, OutputSource } from './job.ts';
import type { RunResult } from './ports.ts';

/** MIME type guessed from a file name (the SDK's one table). */
export const contentTypeOf = contentTypeFor;

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
