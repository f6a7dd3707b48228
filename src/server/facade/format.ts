// Renders gateway jobs in ComfyUI's formats for the native facade: history entries, queue items,
// `executed` outputs, and the instance tag in output subfolders that lets GET /view find which
// instance of the pool holds a file (two instances may both write `ComfyUI_00001_.png`).
import { createHash } from 'node:crypto';
import type { JobOutput, JobRecord } from '../../jobs/index.ts';
import type { FacadePrompt } from './state.ts';

const TAG = /^gw-([0-9a-f]{8})(?:\/(.*))?$/s;

/** Short stable tag of an instance id. */
export function instanceTag(instanceId: string): string {
  return `gw-${createHash('sha256').update(instanceId).digest('hex').slice(0, 8)}`;
}

/** The subfolder a facade client sees for a file in `subfolder` on `instanceId`. */
export function tagSubfolder(instanceId: string, subfolder: string): string {
  return subfolder ? `${instanceTag(instanceId)}/${subfolder}` : instanceTag(instanceId);
}

/** Splits a facade subfolder into the instance tag (if any) and the instance's own subfolder. */
export function untagSubfolder(subfolder: string): { tag: string | null; subfolder: string } {
  const m = TAG.exec(subfolder);
  if (!m) return { tag: null, subfolder };
  return { tag: `gw-${m[1]}`, subfolder: m[2] ?? '' };
}

/** Rewrites the file entries of one `executed` output so their subfolders carry the instance tag. */
export function tagOutput(instanceId: string, output: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(output)) {
    out[key] = Array.isArray(value)
      ? value.map((item) =>
          item !== null &&
          typeof item === 'object' &&
          typeof (item as { filename?: unknown }).filename === 'string' &&
          (item as { type?: unknown }).type !== 'input'
            ? {
                ...item,
                subfolder: tagSubfolder(
                  instanceId,
                  String((item as { subfolder?: unknown }).subfolder ?? ''),
                ),
              }
            : item,
        )
      : value;
  }
  return out;
}

/** History `outputs` rebuilt from the job's link outputs and texts (when no raw outputs were seen). */
export function outputsFromJob(job: JobRecord): Record<string, Record<string, unknown>> {
  const outputs: Record<string, Record<string, unknown>> = {};
  job.outputs.forEach((o: JobOutput, i) => {
    const source = job.output_sources[i];
    const instanceId = source?.instanceId ?? job.instance_id ?? '';
    const key = o.type === 'audio' ? 'audio' : 'images';
    const node = slot(outputs, o.node_id);
    const list = listIn(node, key);
    list.push({
      filename: source?.filename ?? o.name,
      subfolder: tagSubfolder(instanceId, source?.subfolder ?? String(o.subfolder ?? '')),
      type: source?.type ?? String(o.comfy_type ?? 'output'),
    });
  });
  for (const t of job.texts) {
    listIn(slot(outputs, t.node_id), 'text').push(t.text);
  }
  return outputs;
}

function slot(outputs: Record<string, Record<string, unknown>>, node: string): Record<string, unknown> {
  const existing = outputs[node];
  if (existing) return existing;
  const created: Record<string, unknown> = {};
  outputs[node] = created;
  return created;
}

function listIn(node: Record<string, unknown>, key: string): unknown[] {
  const existing = node[key];
  if (Array.isArray(existing)) return existing;
  const created: unknown[] = [];
  node[key] = created;
  return created;
}

/** ComfyUI's 5-tuple queue item. */
export function queueItem(job: JobRecord, prompt: FacadePrompt): unknown[] {
  return [prompt.number, prompt.promptId, job.workflow, prompt.extraData, prompt.outputsToExecute];
}

/** ComfyUI's history entry of a finished job. */
export function historyEntry(job: JobRecord, prompt: FacadePrompt): Record<string, unknown> {
  const outputs = Object.keys(prompt.outputs).length > 0 ? prompt.outputs : outputsFromJob(job);
  const statusStr = job.status === 'succeeded' ? 'success' : 'error';
  const messages = prompt.messages.length > 0 ? prompt.messages : synthesizedMessages(job, prompt);
  const meta: Record<string, unknown> = {};
  for (const node of Object.keys(outputs)) {
    meta[node] = { node_id: node, display_node: node, parent_node: null, real_node_id: node };
  }
  return {
    prompt: queueItem(job, prompt),
    outputs,
    status: { status_str: statusStr, completed: job.status === 'succeeded', messages },
    meta,
  };
}

/** The terminal status message ComfyUI would have recorded for this job. */
export function terminalMessage(job: JobRecord, prompt: FacadePrompt): [string, Record<string, unknown>] {
  const timestamp = job.completed_at ?? Date.now();
  const base = { prompt_id: prompt.promptId, timestamp };
  if (job.status === 'succeeded') return ['execution_success', base];
  const nodeId = job.error?.node_id ?? job.progress?.current_node ?? null;
  const nodeType = job.error?.class_type ?? (nodeId ? (job.workflow[nodeId]?.class_type ?? null) : null);
  if (job.status === 'canceled' || job.error?.code === 'interrupted') {
    return [
      'execution_interrupted',
      { ...base, node_id: nodeId, node_type: nodeType, executed: prompt.executed },
    ];
  }
  const details = (job.error?.details ?? {}) as Record<string, unknown>;
  return [
    'execution_error',
    {
      ...base,
      node_id: nodeId,
      node_type: nodeType,
      executed: prompt.executed,
      exception_message: job.error?.message ?? 'The prompt failed.',
      exception_type:
        typeof details.exception_type === 'string' ? details.exception_type : (job.error?.code ?? 'Error'),
      traceback: job.error?.traceback ? job.error.traceback.split(/(?<=\n)/) : [],
      current_inputs: {},
      current_outputs: {},
      ...(details.node_errors ? { node_errors: details.node_errors } : {}),
    },
  ];
}

function synthesizedMessages(job: JobRecord, prompt: FacadePrompt): Array<[string, Record<string, unknown>]> {
  const messages: Array<[string, Record<string, unknown>]> = [];
  if (job.started_at !== null) {
    const start = { prompt_id: prompt.promptId, timestamp: job.started_at };
    messages.push(['execution_start', start], ['execution_cached', { nodes: [], ...start }]);
  }
  messages.push(terminalMessage(job, prompt));
  return messages;
}
