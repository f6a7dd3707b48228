// Turns the gateway's job events into ComfyUI's WebSocket messages for prompts submitted through
// the facade: `execution_start`, `execution_cached`, `executing`, `progress`, `executed`,
// `execution_success` / `execution_error` / `execution_interrupted`, `executing` null, previews as
// binary frames, and `status` broadcasts on queue changes. When the job manager publishes the
// instance's raw run events ('run-event'), those are forwarded as they are (outputs re-tagged);
// otherwise per-node messages are synthesized from the job's progress snapshots and outputs.
import type { JobEvent, JobManager, JobOutput, JobRecord, RunEvent } from '../jobs/index.ts';
import { isTerminal } from '../jobs/index.ts';
import { historyEntry, tagOutput, terminalMessage } from './comfy-facade-format.ts';
import type { FacadePrompt, FacadePrompts } from './comfy-facade-state.ts';
import type { FacadeSockets } from './comfy-facade-ws.ts';

interface Watch {
  prompt: FacadePrompt;
  stop: AbortController;
  raw: boolean;
  started: boolean;
  current: string | null;
  outputs: Map<string, JobOutput[]>;
}

/** Relays facade jobs' events to their clients' sockets. */
export class FacadeRelay {
  readonly #manager: JobManager;
  readonly #prompts: FacadePrompts;
  readonly #sockets: FacadeSockets;
  readonly #watches = new Map<string, Watch>();
  readonly #onRunEvent: (jobId: string, event: RunEvent) => void;
  #closed = false;

  constructor(options: { manager: JobManager; prompts: FacadePrompts; sockets: FacadeSockets }) {
    this.#manager = options.manager;
    this.#prompts = options.prompts;
    this.#sockets = options.sockets;
    this.#onRunEvent = (jobId, event) => this.#raw(jobId, event);
    this.#manager.on('run-event', this.#onRunEvent);
  }

  /** Prompts of the facade that are queued or running (ComfyUI's queue_remaining). */
  get active(): number {
    return this.#watches.size;
  }

  /** Job ids of active facade prompts. */
  activeJobIds(): string[] {
    return [...this.#watches.keys()];
  }

  /** Starts relaying a job submitted through the facade (call right after submit). */
  watch(job: JobRecord, prompt: FacadePrompt): void {
    if (this.#closed || isTerminal(job.status) || this.#watches.has(job.id)) return;
    const w: Watch = {
      prompt,
      stop: new AbortController(),
      raw: false,
      started: false,
      current: null,
      outputs: new Map(),
    };
    this.#watches.set(job.id, w);
    this.#manager.events.subscribe(job.id, (event) => this.#onJobEvent(job.id, w, event), w.stop.signal);
    this.#sockets.broadcastStatus();
    // A job that already moved on (e.g. started while we subscribed) catches up here.
    const now = this.#manager.get(job.id);
    if (now && now.status !== 'queued')
      this.#onJobEvent(job.id, w, { type: 'status', data: { status: now.status } });
  }

  /** Stops relaying everything. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#manager.off('run-event', this.#onRunEvent);
    for (const w of this.#watches.values()) w.stop.abort();
    this.#watches.clear();
  }

  #send(w: Watch, type: string, data: Record<string, unknown>): void {
    if (w.prompt.clientId) this.#sockets.send(w.prompt.clientId, type, data);
  }

  #record(w: Watch, type: string, data: Record<string, unknown>): void {
    // Bounded: ComfyUI's history keeps only these few per prompt.
    if (w.prompt.messages.length < 16) w.prompt.messages.push([type, data]);
  }

  #start(w: Watch, cached: string[]): void {
    if (w.started) return;
    w.started = true;
    const base = { prompt_id: w.prompt.promptId, timestamp: Date.now() };
    this.#send(w, 'execution_start', base);
    this.#record(w, 'execution_start', base);
    const c = { nodes: cached, ...base };
    this.#send(w, 'execution_cached', c);
    this.#record(w, 'execution_cached', c);
  }

  #executing(w: Watch, node: string): void {
    if (w.current === node) return;
    if (w.current && !w.prompt.executed.includes(w.current)) w.prompt.executed.push(w.current);
    w.current = node;
    this.#send(w, 'executing', { node, display_node: node, prompt_id: w.prompt.promptId });
  }

  #raw(jobId: string, event: RunEvent): void {
    const w = this.#watches.get(jobId);
    if (!w) return;
    w.raw = true;
    const promptId = w.prompt.promptId;
    switch (event.type) {
      case 'started':
        return;
      case 'cached':
        this.#start(w, event.nodes);
        return;
      case 'executing':
        this.#start(w, []);
        this.#executing(w, event.nodeId);
        return;
      case 'progress':
        this.#send(w, 'progress', {
          value: event.value,
          max: event.max,
          prompt_id: promptId,
          node: event.nodeId,
        });
        return;
      case 'executed': {
        const instanceId = this.#manager.get(jobId)?.instance_id ?? '';
        const output = tagOutput(instanceId, event.output);
        w.prompt.outputs[event.nodeId] = output;
        if (!w.prompt.executed.includes(event.nodeId)) w.prompt.executed.push(event.nodeId);
        this.#send(w, 'executed', {
          node: event.nodeId,
          display_node: event.nodeId,
          output,
          prompt_id: promptId,
        });
        return;
      }
      case 'preview':
        this.#preview(w, event.nodeId ?? w.current ?? '', event.mime, event.data);
        return;
      default:
        return;
    }
  }

  #preview(w: Watch, nodeId: string, mime: string, data: Buffer): void {
    if (!w.prompt.clientId) return;
    this.#sockets.sendPreview(w.prompt.clientId, {
      mime,
      data,
      metadata: {
        node_id: nodeId,
        prompt_id: w.prompt.promptId,
        display_node_id: nodeId,
        parent_node_id: null,
        real_node_id: nodeId,
      },
    });
  }

  #onJobEvent(jobId: string, w: Watch, event: JobEvent): void {
    switch (event.type) {
      case 'status': {
        const status = event.data.status;
        if (status === 'running') {
          this.#start(w, []);
          this.#sockets.broadcastStatus();
        } else if (status === 'queued') {
          this.#sockets.broadcastStatus();
        } else if (isTerminal(status)) {
          this.#finish(jobId, w);
        }
        return;
      }
      case 'progress': {
        if (w.raw) return;
        const node = event.data.current_node;
        if (!node) return;
        this.#start(w, []);
        this.#executing(w, node);
        if (event.data.step !== null && event.data.step !== undefined && event.data.steps) {
          this.#send(w, 'progress', {
            value: event.data.step,
            max: event.data.steps,
            prompt_id: w.prompt.promptId,
            node,
          });
        }
        return;
      }
      case 'output': {
        if (w.raw) return;
        const list = w.outputs.get(event.data.node_id) ?? [];
        list.push(event.data);
        w.outputs.set(event.data.node_id, list);
        return;
      }
      case 'preview':
        if (w.raw) return;
        this.#preview(
          w,
          event.data.node_id,
          event.data.content_type,
          Buffer.from(event.data.data_base64, 'base64'),
        );
        return;
    }
  }

  #finish(jobId: string, w: Watch): void {
    this.#watches.delete(jobId);
    w.stop.abort();
    const job = this.#manager.get(jobId);
    if (!job) return;
    if (job.status === 'succeeded' && !w.raw) {
      // executed per output node, in node order, from the job's outputs.
      const entry = historyEntry(job, w.prompt).outputs as Record<string, Record<string, unknown>>;
      for (const [node, output] of Object.entries(entry)) {
        this.#executing(w, node);
        if (!w.prompt.executed.includes(node)) w.prompt.executed.push(node);
        this.#send(w, 'executed', { node, display_node: node, output, prompt_id: w.prompt.promptId });
      }
    }
    if (w.current && !w.prompt.executed.includes(w.current) && job.status === 'succeeded')
      w.prompt.executed.push(w.current);
    if (job.status === 'canceled' && job.started_at === null && !w.started) {
      // Deleted while pending: ComfyUI says nothing about such a prompt, it just leaves the queue.
      this.#sockets.broadcastStatus();
      return;
    }
    const [type, data] = terminalMessage(job, w.prompt);
    this.#start(w, []);
    this.#send(w, type, data);
    this.#record(w, type, data);
    this.#sockets.broadcastStatus();
    this.#send(w, 'executing', { node: null, prompt_id: w.prompt.promptId });
  }
}
