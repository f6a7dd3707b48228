// ComfyUI's newer jobs listing (`GET /api/jobs`, `GET /api/jobs/{id}`, v0.6+) over the facade's
// prompts: pending, in-progress and finished prompts in ComfyUI's job shape, with its filters,
// sorting, pagination and its `{"error": …}` answers to bad parameters.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isTerminal, type JobRecord } from '../../jobs/index.ts';
import type { FacadeContext } from './common.ts';
import { historyEntry, queueItem } from './format.ts';
import type { FacadePrompt } from './state.ts';

const STATUSES = ['pending', 'in_progress', 'completed', 'failed'] as const;

interface Row {
  status: (typeof STATUSES)[number];
  job: JobRecord;
  prompt: FacadePrompt;
  entry: Record<string, unknown> | undefined;
  createTime: number;
  duration: number | null;
}

/** Fastify plugin: /api/jobs and /api/jobs/{id}. */
export const jobsRoutes: FastifyPluginAsync<{ ctx: FacadeContext }> = async (app, { ctx }) => {
  const { manager } = ctx.options;

  function rows(): Row[] {
    const out: Row[] = [];
    for (const prompt of ctx.prompts.all()) {
      const job = manager.get(prompt.jobId);
      if (!job) continue;
      const createTime =
        typeof prompt.extraData.create_time === 'number' ? prompt.extraData.create_time : job.created_at;
      if (!isTerminal(job.status)) {
        out.push({
          status: job.status === 'queued' ? 'pending' : 'in_progress',
          job,
          prompt,
          entry: undefined,
          createTime,
          duration: null,
        });
        continue;
      }
      // Deleted while pending, or removed from the history: ComfyUI no longer knows it.
      if (prompt.hidden || (job.status === 'canceled' && job.started_at === null)) continue;
      const entry = historyEntry(job, prompt);
      const start = messageTime(entry, ['execution_start']);
      const end = messageTime(entry, ['execution_success', 'execution_error', 'execution_interrupted']);
      out.push({
        status: job.status === 'succeeded' ? 'completed' : 'failed',
        job,
        prompt,
        entry,
        createTime,
        duration: start !== null && end !== null ? end - start : null,
      });
    }
    return out;
  }

  app.get('/api/jobs', { schema: { hide: true } }, async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as Record<string, string | undefined>;
    const bad = (error: string) => reply.code(400).send({ error });
    let statuses: string[] | null = null;
    if (q.status !== undefined) {
      statuses = q.status
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s);
      const invalid = statuses.filter((s) => !(STATUSES as readonly string[]).includes(s));
      if (invalid.length > 0)
        return bad(`Invalid status value(s): ${invalid.join(', ')}. Valid values: ${STATUSES.join(', ')}`);
    }
    const sortBy = q.sort_by ?? 'created_at';
    if (sortBy !== 'created_at' && sortBy !== 'execution_duration')
      return bad("sort_by must be 'created_at' or 'execution_duration'");
    const sortOrder = q.sort_order ?? 'desc';
    if (sortOrder !== 'asc' && sortOrder !== 'desc') return bad("sort_order must be 'asc' or 'desc'");
    let limit: number | null = null;
    if (q.limit !== undefined) {
      if (!/^\s*[-+]?\d+\s*$/.test(q.limit)) return bad('limit must be an integer');
      limit = Number.parseInt(q.limit, 10);
      if (limit <= 0) return bad('limit must be a positive integer');
    }
    let offset = 0;
    if (q.offset !== undefined) {
      if (!/^\s*[-+]?\d+\s*$/.test(q.offset)) return bad('offset must be an integer');
      offset = Math.max(0, Number.parseInt(q.offset, 10));
    }
    let list = rows();
    if (statuses) list = list.filter((r) => statuses.includes(r.status));
    if (q.workflow_id !== undefined) list = list.filter((r) => workflowId(r) === q.workflow_id);
    const key = (r: Row) => (sortBy === 'created_at' ? r.createTime : (r.duration ?? -1));
    list.sort((a, b) => (sortOrder === 'asc' ? key(a) - key(b) : key(b) - key(a)));
    const total = list.length;
    const page = limit === null ? list.slice(offset) : list.slice(offset, offset + limit);
    return {
      jobs: page.map((r) => jobJson(r, false)),
      pagination: { offset, limit, total, has_more: offset + page.length < total },
    };
  });

  app.get('/api/jobs/:id', { schema: { hide: true } }, async (req: FastifyRequest, reply: FastifyReply) => {
    const id = (req.params as { id: string }).id;
    const row = rows().find((r) => r.prompt.promptId === id);
    if (!row) return reply.code(404).send({ error: 'Job not found' });
    return jobJson(row, true);
  });
};

function messageTime(entry: Record<string, unknown>, names: string[]): number | null {
  const status = entry.status as { messages: Array<[string, Record<string, unknown>]> };
  for (const [name, data] of status.messages)
    if (names.includes(name) && typeof data.timestamp === 'number') return data.timestamp;
  return null;
}

function workflowId(row: Row): unknown {
  const info = row.prompt.extraData.extra_pnginfo as { workflow?: { id?: unknown } } | undefined;
  return info?.workflow?.id ?? null;
}

/** The first file output (an `output` one preferred) with its node and media type, and the count. */
function preview(outputs: Record<string, unknown>): { count: number; first: Record<string, unknown> | null } {
  let count = 0;
  let first: Record<string, unknown> | null = null;
  let firstOutput: Record<string, unknown> | null = null;
  for (const [nodeId, ui] of Object.entries(outputs)) {
    if (ui === null || typeof ui !== 'object') continue;
    for (const [mediaType, list] of Object.entries(ui as Record<string, unknown>)) {
      if (!Array.isArray(list)) continue;
      for (const item of list) {
        if (item === null || typeof item !== 'object' || !('filename' in item)) continue;
        count++;
        const p = { ...(item as Record<string, unknown>), nodeId, mediaType };
        first ??= p;
        if ((item as { type?: unknown }).type === 'output') firstOutput ??= p;
      }
    }
  }
  return { count, first: firstOutput ?? first };
}

/** One job in ComfyUI's shape (null fields left out, as ComfyUI does). */
function jobJson(row: Row, detail: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: row.prompt.promptId,
    status: row.status,
    priority: row.prompt.number,
    create_time: row.createTime,
  };
  const e = row.entry;
  if (e) {
    out.execution_start_time = messageTime(e, ['execution_start']);
    out.execution_end_time = messageTime(e, [
      'execution_success',
      'execution_error',
      'execution_interrupted',
    ]);
    const status = e.status as { messages: Array<[string, Record<string, unknown>]> };
    out.execution_error = status.messages.find(([n]) => n === 'execution_error')?.[1] ?? null;
    const { count, first } = preview(e.outputs as Record<string, unknown>);
    out.outputs_count = count;
    out.preview_output = first;
  } else {
    out.outputs_count = 0;
  }
  out.workflow_id = workflowId(row);
  if (detail && e) {
    out.outputs = e.outputs;
    out.execution_status = e.status;
    const [, , prompt, extraData] = queueItem(row.job, row.prompt);
    out.workflow = { prompt, extra_data: extraData };
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null && v !== undefined));
}
