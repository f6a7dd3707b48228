// zod schemas of the HTTP API: they validate requests and (through zod.ts) generate OpenAPI.
import { z } from 'zod';
import { modelHintSchema } from './job-models.ts';
import { JOB_STATUSES } from '../jobs/index.ts';

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const inputsMap = z.record(
  z.string().regex(/^[^.\s]+\.\S+$/, 'input names are "<node_id>.<input>", e.g. "10.image"'),
  z.string().min(1),
);

/** Body of POST /api/v2/jobs (v2 fields plus our documented extensions). */
export const submitJobBody = z
  .object({
    workflow: z
      .record(z.string(), z.unknown())
      .describe(
        'API-format prompt `{node_id: {class_type, inputs}}`; UI (editor) exports are converted (extension).',
      ),
    extra_data: z
      .object({ api_key_comfy_org: z.string() })
      .strict()
      .optional()
      .describe('ComfyUI extra_data for partner nodes; never persisted.'),
    webhook_url: httpUrl.optional().describe('Extension: notified (signed, retried) when the job ends.'),
    webhook_events: z
      .array(z.enum(['job.progress']))
      .max(4)
      .optional()
      .describe(
        'Extension: extra webhook events; `job.progress` sends throttled progress snapshots (terminal events are always sent).',
      ),
    overrides: z
      .record(z.string(), z.record(z.string(), z.unknown()))
      .optional()
      .describe('Extension: `{node_id: {input: value}}` applied before the run.'),
    inputs: inputsMap
      .optional()
      .describe(
        'Extension: `{"<node_id>.<input>": url | data URI | asset id}` uploaded to the instance before the run.',
      ),
    models: z
      .array(modelHintSchema)
      .max(64)
      .optional()
      .describe(
        'Extension: where the models the workflow loads come from (`{name, url, directory, sha256?}`); missing ones are downloaded into MODELS_DIR before the run.',
      ),
    output: z
      .object({
        store: z.enum(['inline', 'storage', 'link']).default('link'),
        format: z.enum(['png', 'jpeg', 'webp']).optional(),
        quality: z.int().min(1).max(100).optional(),
      })
      .strict()
      .optional()
      .describe('Extension: how outputs are delivered (default `link`).'),
    timeout_ms: z
      .int()
      .min(100)
      .max(7 * 24 * 3_600_000)
      .optional()
      .describe('Extension: per-job time limit.'),
    priority: z
      .int()
      .min(-1_000_000)
      .max(1_000_000)
      .optional()
      .describe('Extension: higher runs first (default 0).'),
    metadata: z
      .unknown()
      .optional()
      .refine(
        (v) => v === undefined || JSON.stringify(v).length <= 16_384,
        'metadata must be at most 16 KiB of JSON',
      )
      .describe('Extension: echoed back on the job and in webhooks.'),
  })
  .strict();
export type SubmitJobBody = z.infer<typeof submitJobBody>;

/** Query of POST /api/v2/jobs. */
export const submitJobQuery = z.object({
  wait: z.coerce
    .number()
    .min(0)
    .max(600)
    .optional()
    .describe('Extension: hold the response up to this many seconds until the job ends (never cancels it).'),
});

/** `{id}` path parameter. */
export const jobIdParams = z.object({ id: z.string().min(1).max(200) });

/** Output content path parameters. */
export const outputParams = z.object({
  id: z.string().min(1).max(200),
  index: z.coerce.number().int().min(0),
});

/** A `status` query: comma-separated statuses out of `statuses` (an unknown one is a 400 naming it). */
export function statusList<S extends string>(statuses: readonly S[]) {
  return z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return undefined;
      const parts = s
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      const bad = parts.filter((p) => !(statuses as readonly string[]).includes(p));
      if (bad.length) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown status ${bad.join(', ')}; expected ${statuses.join(', ')}`,
        });
        return z.NEVER;
      }
      return parts as S[];
    })
    .describe('Comma-separated statuses to include.');
}

/** Query of GET /api/v2/jobs. */
export const listJobsQuery = z.object({
  status: statusList(JOB_STATUSES),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(400).optional().describe('`next_cursor` of the previous page.'),
});

const progress = z.object({
  value: z.number(),
  nodes_done: z.int(),
  nodes_total: z.int(),
  current_node: z.string().nullable().optional(),
  current_node_class: z.string().nullable().optional(),
  step: z.int().nullable().optional(),
  steps: z.int().nullable().optional(),
  message: z.string().nullable().optional(),
});

const output = z.object({
  node_id: z.string(),
  name: z.string(),
  type: z.string(),
  content_type: z.string(),
  size_bytes: z.int(),
  id: z.string(),
  hash: z.string().nullable(),
  url: z.string(),
  url_expires_at: z.string(),
  job_id: z.string().nullable().optional(),
});

const jobError = z.object({
  code: z.string(),
  message: z.string(),
  node_id: z.string().nullable().optional(),
  class_type: z.string().nullable().optional(),
  traceback: z.string().nullable().optional(),
  details: z
    .record(z.string(), z.unknown())
    .nullable()
    .optional()
    .describe('Extension: e.g. ComfyUI node_errors.'),
});

/** The v2 Job plus our extensions (all additive). */
export const jobSchema = z.object({
  id: z.string(),
  status: z.enum(JOB_STATUSES),
  created_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  expires_at: z.string(),
  queue_position: z.int().nullable(),
  progress: progress.nullable(),
  outputs: z.array(output),
  error: jobError.nullable(),
  metrics: z.object({ queue_ms: z.int().nullable(), execution_ms: z.int().nullable() }),
  waiting_reason: z
    .enum([
      'no_instance_available',
      'instances_busy',
      'retry_backoff',
      'queued_on_instance',
      'provisioning_models',
    ])
    .nullable()
    .describe('Extension: why a queued job waits (null otherwise).'),
  estimated_completion_at: z
    .string()
    .nullable()
    .describe(
      'Extension: an estimate from recent run times of the same workflow and the queue ahead; null when unknown.',
    ),
  webhooks: z
    .array(
      z.object({
        id: z.string(),
        event: z.string(),
        url: z.string(),
        status: z.enum(['pending', 'delivered', 'failed', 'skipped']),
        attempts: z.array(
          z.object({
            attempt: z.int(),
            started_at: z.string(),
            duration_ms: z.number(),
            status_code: z.int().nullable(),
            error: z.string().nullable(),
          }),
        ),
        created_at: z.string(),
        completed_at: z.string().nullable(),
        error: z.string().nullable(),
      }),
    )
    .optional()
    .describe('Extension: deliveries of the terminal webhook event, with every attempt.'),
  urls: z.object({ self: z.string(), events: z.string(), cancel: z.string() }),
  priority: z.int().describe('Extension.'),
  metadata: z.unknown().optional().describe('Extension: as submitted.'),
  instance_id: z.string().nullable().describe('Extension: instance of the current/last attempt.'),
  prompt_id: z.string().nullable().describe('Extension: ComfyUI prompt id (the job id).'),
  attempts: z
    .array(
      z.object({
        n: z.int(),
        instance_id: z.string(),
        started_at: z.string(),
        finished_at: z.string().nullable(),
        error: z.object({ code: z.string(), message: z.string() }).nullable(),
      }),
    )
    .describe('Extension: every attempt with its instance and error.'),
  texts: z.array(z.object({ node_id: z.string(), text: z.string() })).describe('Extension: text outputs.'),
});

/** The error envelope. */
export const errorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).nullable().optional(),
  }),
});

/** A /prompt_sync timeout in seconds: at least 0.1 s (the v2 `timeout_ms` minimum), finite. */
const syncTimeout = z
  .number()
  .min(0.1, 'timeout must be at least 0.1 seconds')
  .max(7 * 24 * 3600, 'timeout must be at most 7 days');

/** Query of POST /prompt_sync: `?timeout=<seconds>`, the form existing clients send. */
export const promptSyncQuery = z.object({
  timeout: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return undefined;
      const n = raw.trim() === '' ? Number.NaN : Number(raw);
      const parsed = syncTimeout.safeParse(n);
      if (!parsed.success) {
        ctx.addIssue({
          code: 'custom',
          message: Number.isFinite(n)
            ? (parsed.error.issues[0]?.message ?? 'invalid')
            : 'timeout must be a number',
        });
        return z.NEVER;
      }
      return parsed.data;
    })
    .describe('Seconds, as `timeout` in the body (the body wins when both are given).'),
});

/** Body of POST /prompt_sync (serverless handler shape). */
export const promptSyncBody = z.object({
  prompt: z.record(z.string(), z.unknown()).describe('API-format prompt (UI exports are converted).'),
  return_image_base64: z.boolean().optional().default(false),
  timeout: syncTimeout
    .optional()
    .describe('Seconds for the whole call, queueing included; the job fails with timeout after it.'),
  overrides: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  inputs: inputsMap.optional(),
  priority: z.int().min(-1_000_000).max(1_000_000).optional(),
  webhook_url: httpUrl.optional(),
});
