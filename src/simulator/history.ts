// Prompt history (in memory, insertion ordered, capped like MAXIMUM_HISTORY_SIZE) and the v0.6+
// jobs view over queue + history (/api/jobs), with ComfyUI's field order and omitted nulls.
import type { PromptQueue, QueueItem } from './prompt-queue.ts';
import { ordered, pyKeys, toNumber } from './py-json.ts';

/** ComfyUI's MAXIMUM_HISTORY_SIZE. */
export const MAXIMUM_HISTORY_SIZE = 10_000;

/** One finished prompt as /history returns it. */
export interface HistoryEntry {
  item: QueueItem;
  outputs: Map<string, unknown>;
  meta: Map<string, unknown>;
  status: {
    status_str: 'success' | 'error';
    completed: boolean;
    messages: Array<[string, Record<string, unknown>]>;
  };
}

/** The history store of one instance. */
export class PromptHistory {
  readonly #entries = new Map<string, HistoryEntry>();
  readonly #max: number;

  constructor(max = MAXIMUM_HISTORY_SIZE) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Records a finished prompt (an existing id keeps its place, as a Python dict would). */
  add(entry: HistoryEntry): void {
    if (this.#entries.size > this.#max) {
      const first = this.#entries.keys().next().value;
      if (first !== undefined) this.#entries.delete(first);
    }
    this.#entries.set(entry.item.promptId, entry);
  }

  get(id: string): HistoryEntry | undefined {
    return this.#entries.get(id);
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }

  values(): IterableIterator<HistoryEntry> {
    return this.#entries.values();
  }

  /** get_history(max_items, offset) over all entries. */
  list(maxItems: number | null, offset: number): Map<string, unknown> {
    const out = new Map<string, unknown>();
    let off = offset;
    if (off < 0 && maxItems !== null) off = this.#entries.size - maxItems;
    let i = 0;
    for (const [k, e] of this.#entries) {
      if (i >= off) {
        out.set(k, entryJson(e));
        if (maxItems !== null && out.size >= maxItems) break;
      }
      i++;
    }
    return out;
  }
}

/** The 5-element prompt tuple as lists show it. */
export function itemTuple(item: QueueItem): unknown[] {
  return [item.number, item.promptId, item.prompt, item.extraData, item.outputs];
}

/** JSON shape of one history entry. */
export function entryJson(e: HistoryEntry): Record<string, unknown> {
  return ordered([
    ['prompt', itemTuple(e.item)],
    ['outputs', e.outputs],
    [
      'status',
      ordered([
        ['status_str', e.status.status_str],
        ['completed', e.status.completed],
        ['messages', e.status.messages],
      ]),
    ],
    ['meta', e.meta],
  ]);
}

/** Jobs API statuses. */
export const JOB_STATUSES = ['pending', 'in_progress', 'completed', 'failed'] as const;

interface JobRow {
  status: string;
  item: QueueItem;
  entry?: HistoryEntry;
  createTime: number;
  duration: number | null;
}

function previewOutput(outputs: Map<string, unknown>): {
  count: number;
  preview: Record<string, unknown> | null;
} {
  let count = 0;
  let first: Record<string, unknown> | null = null;
  let firstOutput: Record<string, unknown> | null = null;
  for (const [nodeId, ui] of outputs) {
    if (!ui || typeof ui !== 'object') continue;
    for (const mediaType of pyKeys(ui)) {
      const list = (ui as Record<string, unknown>)[mediaType];
      if (!Array.isArray(list)) continue;
      for (const it of list) {
        if (!it || typeof it !== 'object' || !('filename' in it)) continue;
        count++;
        const rec = it as Record<string, unknown>;
        const p = ordered([
          ...pyKeys(rec).map((k) => [k, rec[k]] as [string, unknown]),
          ['nodeId', nodeId],
          ['mediaType', mediaType],
        ]);
        first ??= p;
        if (rec.type === 'output') firstOutput ??= p;
      }
    }
  }
  return { count, preview: firstOutput ?? first };
}

function messageTime(e: HistoryEntry, names: string[]): number | null {
  for (const [name, data] of e.status.messages)
    if (names.includes(name)) return (toNumber(data.timestamp) ?? null) as number | null;
  return null;
}

/** One job object (summary, or with details for finished jobs). */
export function jobJson(row: JobRow, detail: boolean): Record<string, unknown> {
  const fields: Array<[string, unknown]> = [
    ['id', row.item.promptId],
    ['status', row.status],
    ['priority', row.item.number],
    ['create_time', row.item.extraData.create_time ?? null],
  ];
  const e = row.entry;
  if (e) {
    fields.push(['execution_start_time', messageTime(e, ['execution_start'])]);
    fields.push([
      'execution_end_time',
      messageTime(e, ['execution_success', 'execution_error', 'execution_interrupted']),
    ]);
    const err = e.status.messages.find(([n]) => n === 'execution_error');
    fields.push(['execution_error', err ? err[1] : null]);
    const { count, preview } = previewOutput(e.outputs);
    fields.push(['outputs_count', count]);
    fields.push(['preview_output', preview]);
  } else {
    fields.push(['outputs_count', 0]);
  }
  const info = row.item.extraData.extra_pnginfo as Record<string, unknown> | undefined;
  const wf =
    info && typeof info === 'object' ? (info.workflow as Record<string, unknown> | undefined) : undefined;
  fields.push(['workflow_id', wf && typeof wf === 'object' ? (wf.id ?? null) : null]);
  if (detail && e) {
    fields.push(['outputs', e.outputs]);
    fields.push(['execution_status', entryJson(e).status]);
    fields.push([
      'workflow',
      ordered([
        ['prompt', row.item.prompt],
        ['extra_data', row.item.extraData],
      ]),
    ]);
  }
  return ordered(fields.filter(([, v]) => v !== null && v !== undefined));
}

/** All jobs: running, pending, then history. */
export function allJobs(queue: PromptQueue, history: PromptHistory): JobRow[] {
  const rows: JobRow[] = [];
  const ct = (item: QueueItem) => toNumber(item.extraData.create_time) ?? 0;
  if (queue.running)
    rows.push({ status: 'in_progress', item: queue.running, createTime: ct(queue.running), duration: null });
  for (const item of queue.pending())
    rows.push({ status: 'pending', item, createTime: ct(item), duration: null });
  for (const entry of history.values()) {
    const start = messageTime(entry, ['execution_start']);
    const end = messageTime(entry, ['execution_success', 'execution_error', 'execution_interrupted']);
    rows.push({
      status: entry.status.status_str === 'success' ? 'completed' : 'failed',
      item: entry.item,
      entry,
      createTime: ct(entry.item),
      duration: start !== null && end !== null ? end - start : null,
    });
  }
  return rows;
}

/** Handles GET /api/jobs query parameters; returns [status, body]. */
export function listJobs(queue: PromptQueue, history: PromptHistory, q: URLSearchParams): [number, unknown] {
  const bad = (msg: string): [number, unknown] => [400, ordered([['error', msg]])];
  let statuses: string[] | null = null;
  const statusParam = q.get('status');
  if (statusParam !== null) {
    statuses = statusParam
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s);
    const invalid = statuses.filter((s) => !(JOB_STATUSES as readonly string[]).includes(s));
    if (invalid.length > 0)
      return bad(`Invalid status value(s): ${invalid.join(', ')}. Valid values: ${JOB_STATUSES.join(', ')}`);
  }
  const sortBy = q.get('sort_by') ?? 'created_at';
  if (sortBy !== 'created_at' && sortBy !== 'execution_duration')
    return bad("sort_by must be 'created_at' or 'execution_duration'");
  const sortOrder = q.get('sort_order') ?? 'desc';
  if (sortOrder !== 'asc' && sortOrder !== 'desc') return bad("sort_order must be 'asc' or 'desc'");
  let limit: number | null = null;
  const limitParam = q.get('limit');
  if (limitParam !== null) {
    if (!/^\s*[-+]?\d+\s*$/.test(limitParam)) return bad('limit must be an integer');
    limit = Number.parseInt(limitParam, 10);
    if (limit <= 0) return bad('limit must be a positive integer');
  }
  let offset = 0;
  const offsetParam = q.get('offset');
  if (offsetParam !== null) {
    if (!/^\s*[-+]?\d+\s*$/.test(offsetParam)) return bad('offset must be an integer');
    offset = Math.max(0, Number.parseInt(offsetParam, 10));
  }
  const workflowId = q.get('workflow_id');
  let rows = allJobs(queue, history);
  if (statuses) rows = rows.filter((r) => statuses.includes(r.status));
  if (workflowId !== null) {
    rows = rows.filter((r) => {
      const info = r.item.extraData.extra_pnginfo as { workflow?: { id?: unknown } } | undefined;
      return info?.workflow?.id === workflowId;
    });
  }
  const key = (r: JobRow) => (sortBy === 'created_at' ? r.createTime : (r.duration ?? -1));
  rows.sort((a, b) => (sortOrder === 'asc' ? key(a) - key(b) : key(b) - key(a)));
  const total = rows.length;
  const page = limit === null ? rows.slice(offset) : rows.slice(offset, offset + limit);
  return [
    200,
    ordered([
      ['jobs', page.map((r) => jobJson(r, false))],
      [
        'pagination',
        ordered([
          ['offset', offset],
          ['limit', limit],
          ['total', total],
          ['has_more', offset + page.length < total],
        ]),
      ],
    ]),
  ];
}

/** Handles GET /api/jobs/{id}; returns [status, body]. */
export function getJob(queue: PromptQueue, history: PromptHistory, id: string): [number, unknown] {
  const row = allJobs(queue, history).find((r) => r.item.promptId === id);
  if (!row) return [404, ordered([['error', 'Job not found']])];
  return [200, jobJson(row, true)];
}
