// Renders stored jobs as v2 Job objects: ISO timestamps, links made absolute on the request
// origin (or PUBLIC_URL), queue position, and our additive fields.
import type { FastifyRequest } from 'fastify';
import type { JobOutput, JobRecord, LiveInfo } from '../jobs/index.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The origin links are built on: PUBLIC_URL when set, else the request's scheme and host. */
export function originOf(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl;
  return `${request.protocol}://${request.host}`;
}

function absolute(origin: string, url: string): string {
  return url.startsWith('/') ? origin + url : url;
}

/** One output with an absolute URL. */
export function renderOutput(output: JobOutput, origin: string): JobOutput {
  return { ...output, url: absolute(origin, output.url) };
}

/** The v2 Job for a record; `live` (JobManager.liveInfo) adds the time-dependent fields. */
export function renderJob(
  job: JobRecord,
  origin: string,
  queuePosition: number | null,
  live?: LiveInfo,
): Record<string, unknown> {
  const self = `${origin}/api/v2/jobs/${job.id}`;
  return {
    id: job.id,
    status: job.status,
    created_at: iso(job.created_at),
    started_at: iso(job.started_at),
    completed_at: iso(job.completed_at),
    expires_at: iso(job.expires_at),
    queue_position: job.status === 'queued' ? queuePosition : null,
    progress: job.progress,
    outputs: job.outputs.map((o) => renderOutput(o, origin)),
    error: job.error,
    metrics: { queue_ms: job.queue_ms, execution_ms: live ? live.execution_ms : job.execution_ms },
    waiting_reason: live?.waiting_reason ?? null,
    estimated_completion_at: iso(live?.estimated_completion_at ?? null),
    urls: { self, events: `${self}/events`, cancel: `${self}/cancel` },
    priority: job.priority,
    ...(job.request.metadata !== undefined ? { metadata: job.request.metadata } : {}),
    instance_id: job.instance_id,
    prompt_id: job.prompt_id,
    attempts: job.attempts.map((a) => ({
      n: a.n,
      instance_id: a.instance_id,
      started_at: iso(a.started_at),
      finished_at: iso(a.finished_at),
      error: a.error,
    })),
    texts: job.texts,
    ...(job.webhooks ? { webhooks: job.webhooks } : {}),
  };
}
