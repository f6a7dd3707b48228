// The one builder of the gateway's content links (GET /api/v2/jobs/{id}/outputs/{n}/content) and
// their expiry, for link outputs built from a run's file list and for outputs OutputDelivery streams.
import type { OutputFile } from '../comfy-types.ts';
import { mimeFromName } from '../media-type.ts';
import type { JobOutput } from './job-output.ts';

/** Where a job's content links point and how long they work. */
export interface LinkOptions {
  /** Origin (and mount prefix) of the gateway, e.g. `https://gw.example.com`; '' = host-relative. */
  baseUrl: string;
  /** How long the job, and so its link, is kept: the link expires `ttlMs` from now. */
  ttlMs: number;
  now?: number;
}

/** Path (host-relative) of a job output's content. */
export function outputContentPath(jobId: string, index: number): string {
  return `/api/v2/jobs/${encodeURIComponent(jobId)}/outputs/${index}/content`;
}

/**
 * The content link of output `index` and its expiry. The route serves an output as long as its job
 * is kept, and outputs are collected as the job ends, so the link lives the job's retention from now.
 */
export function outputLink(
  jobId: string,
  index: number,
  options: LinkOptions,
): Pick<JobOutput, 'url' | 'url_expires_at'> {
  return {
    url: `${options.baseUrl.replace(/\/+$/, '')}${outputContentPath(jobId, index)}`,
    url_expires_at: new Date((options.now ?? Date.now()) + options.ttlMs).toISOString(),
  };
}

/** Link outputs for every file of a run, in its order, without reading them (size 0, type by name). */
export function linkOutputs(jobId: string, files: readonly OutputFile[], options: LinkOptions): JobOutput[] {
  const now = options.now ?? Date.now();
  return files.map((file, index) => ({
    node_id: file.nodeId,
    name: file.filename,
    type: file.kind,
    content_type: mimeFromName(file.filename),
    size_bytes: 0,
    id: `${jobId}.${index}`,
    hash: null,
    ...outputLink(jobId, index, { ...options, now }),
    job_id: jobId,
    subfolder: file.subfolder,
    comfy_type: file.type,
  }));
}
