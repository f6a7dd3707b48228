// Relays what the instances send about facade prompts to the facade's sockets, as ComfyUI sends
// it: every message of the prompt (`execution_start`, `execution_cached` with its nodes,
// `executing`, `progress`, `progress_state`, `executed`, custom ones) and every binary frame
// (previews, SaveImageWebsocket images, progress text), in the order the instance sent them, with
// the prompt id the client knows and output subfolders tagged with the instance. The terminal
// message and `executing` null wait until the gateway's job has ended, so that `/history` already
// answers when the client reads it (ComfyUI writes history before it sends them). When the
// instance's socket missed a run (the job completed by polling), ComfyUI's messages are
// synthesized from the job's progress snapshots and outputs instead.
import type { ComfyMessage, PreviewFrame, TextFrame } from '../../comfy/index.ts';
import type { JobEvent, JobManager, JobOutput, JobRecord } from '../../jobs/index.ts';
import { isTerminal } from '../../jobs/index.ts';
import type { FacadePool } from './common.ts';
import { historyEntry, tagOutput, terminalMessage } from './format.ts';
import type { FacadePrompt, FacadePrompts } from './state.ts';
import type { FacadeSockets } from './ws.ts';

type Message = { type: string; data: Record<string, unknown> };

interface Watch {
  prompt: FacadePrompt;
  stop: AbortController;
  /** True once the instance's own messages for this prompt arrive (no synthesis needed). */
  raw: boolean;
  started: boolean;
  /** The node executing now (ComfyUI re-sends it to a reconnecting client). */
  current: string | null;
  /** The instance's terminal message, held until the job ends. */
  terminal: Message | null;
  /**
   * Preview frames held for a client without preview metadata: ComfyUI sends those after the
   * `progress` message, where a metadata client (as the gateway is to its instances) gets the frame first.
   */
  frames: PreviewFrame[];
  outputs: Map<string, JobOutput[]>;
}

const TERMINAL = new Set(['execution_success', 'execution_error', 'execution_interrupted']);
/** ComfyUI sends these to every socket when the prompt has no client id. */
const BROADCAST_WITHOUT_CLIENT = new Set(['progress', 'progress_state']);

/** Relays facade prompts' instance messages to their clients' sockets. */
export class FacadeRelay {
  readonly #manager: JobManager;
  readonly #pool: FacadePool;
  readonly #sockets: FacadeSockets;
  readonly #watches = new Map<string, Watch>();
  /** Per instance: its client's listeners, and the prompt it last reported active (for id-less frames). */
  readonly #instances = new Map<string, { off: () => void; active: string | null }>();
  readonly #onAdded = (snapshot: { id: string }) => this.#subscribe(snapshot.id);
  readonly #onRemoved = (info: { instanceId: string }) => this.#unsubscribe(info.instanceId);
  #closed = false;

  constructor(options: {
    manager: JobManager;
    pool: FacadePool;
    prompts: FacadePrompts;
    sockets: FacadeSockets;
  }) {
    this.#manager = options.manager;
    this.#pool = options.pool;
    this.#sockets = options.sockets;
    this.#pool.on('added', this.#onAdded);
    this.#pool.on('removed', this.#onRemoved);
    for (const instance of this.#pool.list()) this.#subscribe(instance.id);
  }

  /** Prompts of the facade that are queued or running (ComfyUI's queue_remaining). */
  get active(): number {
    return this.#watches.size;
  }

  /** Job ids of active facade prompts. */
  activeJobIds(): string[] {
    return [...this.#watches.keys()];
  }

  /** The node a running prompt of `clientId` executes now (ComfyUI re-sends it on reconnect). */
  currentNode(clientId: string): string | null {
    for (const w of this.#watches.values())
      if (w.prompt.clientId === clientId && w.started && w.current !== null && !w.terminal) return w.current;
    return null;
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
      terminal: null,
      frames: [],
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
    this.#pool.off('added', this.#onAdded);
    this.#pool.off('removed', this.#onRemoved);
    for (const id of [...this.#instances.keys()]) this.#unsubscribe(id);
    for (const w of this.#watches.values()) w.stop.abort();
    this.#watches.clear();
  }

  #subscribe(instanceId: string): void {
    if (this.#closed || this.#instances.has(instanceId)) return;
    const client = this.#pool.client(instanceId);
    if (!client) return;
    const state = { off: () => {}, active: null as string | null };
    const onMessage = (m: ComfyMessage) => this.#instanceMessage(state, m);
    const onPreview = (f: PreviewFrame) => this.#instancePreview(state, f);
    const onText = (f: TextFrame) => this.#instanceText(state, f);
    client.on('message', onMessage);
    client.on('preview', onPreview);
    client.on('text', onText);
    state.off = () => {
      client.off('message', onMessage);
      client.off('preview', onPreview);
      client.off('text', onText);
    };
    this.#instances.set(instanceId, state);
  }

  #unsubscribe(instanceId: string): void {
    this.#instances.get(instanceId)?.off();
    this.#instances.delete(instanceId);
  }

  /** Sends to the prompt's client; messages ComfyUI broadcasts for client-less prompts go to the owner's sockets. */
  #send(w: Watch, type: string, data: Record<string, unknown>): void {
    if (w.prompt.clientId) this.#sockets.send(w.prompt.clientId, type, data);
    else if (BROADCAST_WITHOUT_CLIENT.has(type)) this.#sockets.broadcast(type, data, w.prompt.owner);
  }

  #record(w: Watch, type: string, data: Record<string, unknown>): void {
    // Bounded: ComfyUI's history keeps only these few per prompt.
    if (w.prompt.messages.length < 16) w.prompt.messages.push([type, data]);
  }

  #instanceMessage(state: { active: string | null }, message: ComfyMessage): void {
    const type = message.type === 'custom' ? message.name : message.type;
    // Relayed as received, custom types included: read as a plain record, whatever the type.
    const raw: unknown = message.data;
    if (raw === null || typeof raw !== 'object') return;
    const data = raw as Record<string, unknown>;
    const jobId = data.prompt_id;
    if (typeof jobId !== 'string') return;
    if (type === 'executing' || type === 'execution_start' || type === 'progress')
      state.active = type === 'executing' && data.node === null ? null : jobId;
    const w = this.#watches.get(jobId);
    if (!w) return;
    w.raw = true;
    const out = withPromptId(type, data, w.prompt.promptId);
    if (type !== 'progress') this.#flushFrames(w);
    switch (type) {
      case 'execution_start':
        // ComfyUI's second `status` of a prompt comes as it leaves the queue, just before this.
        this.#sockets.broadcastStatus();
        w.started = true;
        this.#record(w, type, out);
        break;
      case 'execution_cached':
        this.#record(w, type, out);
        break;
      case 'executing':
        if (out.node === null) return; // sent when the job has ended, after history is readable
        this.#executing(w, String(out.node));
        break;
      case 'executed': {
        const instanceId = this.#manager.get(jobId)?.instance_id ?? '';
        const node = String(out.node);
        const output =
          out.output !== null && typeof out.output === 'object'
            ? tagOutput(instanceId, out.output as Record<string, unknown>)
            : out.output;
        if (output !== null && typeof output === 'object')
          w.prompt.outputs[node] = output as Record<string, unknown>;
        if (!w.prompt.executed.includes(node)) w.prompt.executed.push(node);
        out.output = output;
        break;
      }
      default:
        if (TERMINAL.has(type)) {
          w.terminal = { type, data: out };
          return;
        }
    }
    this.#send(w, type, out);
    if (type === 'progress') this.#flushFrames(w);
  }

  #flushFrames(w: Watch): void {
    if (w.frames.length === 0) return;
    for (const f of w.frames.splice(0)) this.#preview(w, f.nodeId ?? '', f.mime, f.data, f.displayNodeId);
  }

  #executing(w: Watch, node: string): void {
    if (w.current && !w.prompt.executed.includes(w.current)) w.prompt.executed.push(w.current);
    w.current = node;
  }

  #instancePreview(state: { active: string | null }, frame: PreviewFrame): void {
    const jobId = frame.promptId ?? state.active;
    const w = jobId ? this.#watches.get(jobId) : undefined;
    if (!w) return;
    const f = { ...frame, nodeId: frame.nodeId ?? w.current ?? '' };
    if (w.prompt.clientId && !this.#sockets.wantsMetadata(w.prompt.clientId) && w.frames.length < 64)
      w.frames.push(f);
    else this.#preview(w, f.nodeId, f.mime, f.data, f.displayNodeId);
  }

  #instanceText(state: { active: string | null }, frame: TextFrame): void {
    const jobId = frame.promptId ?? state.active;
    const w = jobId ? this.#watches.get(jobId) : undefined;
    if (w?.prompt.clientId) this.#sockets.sendText(w.prompt.clientId, frame.nodeId, frame.text);
  }

  #preview(w: Watch, nodeId: string, mime: string, data: Buffer, displayNodeId?: string): void {
    const image = {
      mime,
      data,
      metadata: {
        node_id: nodeId,
        prompt_id: w.prompt.promptId,
        display_node_id: displayNodeId ?? nodeId,
        parent_node_id: null,
        real_node_id: nodeId,
      },
    };
    if (w.prompt.clientId) this.#sockets.sendPreview(w.prompt.clientId, image);
    else this.#sockets.broadcastPreview(image, w.prompt.owner);
  }

  #onJobEvent(jobId: string, w: Watch, event: JobEvent): void {
    switch (event.type) {
      case 'status': {
        const status = event.data.status;
        if (status === 'running') {
          if (w.raw) return;
          this.#sockets.broadcastStatus();
          this.#start(w, []);
        } else if (status === 'queued') {
          // Back in the queue for another attempt: what the failed attempt said is void.
          w.terminal = null;
          w.current = null;
          this.#sockets.broadcastStatus();
        } else if (isTerminal(status)) {
          this.#finish(jobId, w);
        }
        return;
      }
      // The rest only when the instance's own messages are missing: synthesized from the job.
      case 'progress': {
        if (w.raw) return;
        const node = event.data.current_node;
        if (!node) return;
        this.#start(w, []);
        if (w.current !== node) {
          this.#executing(w, node);
          this.#send(w, 'executing', { node, display_node: node, prompt_id: w.prompt.promptId });
        }
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

  /** ComfyUI's opening messages, synthesized (the instance's were not seen). */
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

  #finish(jobId: string, w: Watch): void {
    this.#watches.delete(jobId);
    w.stop.abort();
    this.#flushFrames(w);
    const job = this.#manager.get(jobId);
    if (!job) return;
    if (job.status === 'succeeded' && !w.raw) {
      // executed per output node, in node order, from the job's outputs.
      const entry = historyEntry(job, w.prompt).outputs as Record<string, Record<string, unknown>>;
      for (const [node, output] of Object.entries(entry)) {
        if (w.current !== node) {
          this.#executing(w, node);
          this.#send(w, 'executing', { node, display_node: node, prompt_id: w.prompt.promptId });
        }
        if (!w.prompt.executed.includes(node)) w.prompt.executed.push(node);
        this.#send(w, 'executed', { node, display_node: node, output, prompt_id: w.prompt.promptId });
      }
    }
    if (w.current && !w.prompt.executed.includes(w.current) && job.status === 'succeeded')
      w.prompt.executed.push(w.current);
    w.current = null;
    if (job.status === 'canceled' && job.started_at === null && !w.started) {
      // Deleted while pending: ComfyUI says nothing about such a prompt, it just leaves the queue.
      this.#sockets.broadcastStatus();
      return;
    }
    // The instance's own terminal message when it agrees with how the job ended (a job can fail
    // after the run succeeded, e.g. while delivering outputs).
    const expected =
      job.status === 'succeeded'
        ? 'execution_success'
        : job.status === 'canceled' || job.error?.code === 'interrupted'
          ? 'execution_interrupted'
          : 'execution_error';
    const [type, data] =
      w.terminal?.type === expected ? [w.terminal.type, w.terminal.data] : terminalMessage(job, w.prompt);
    this.#start(w, []);
    this.#send(w, type, data);
    this.#record(w, type, data);
    this.#sockets.broadcastStatus();
    this.#send(w, 'executing', { node: null, prompt_id: w.prompt.promptId });
  }
}

/** The message's data with the facade's prompt id (also inside progress_state's nodes). */
function withPromptId(
  type: string,
  data: Record<string, unknown>,
  promptId: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...data, prompt_id: promptId };
  if (type === 'progress_state' && data.nodes !== null && typeof data.nodes === 'object') {
    const nodes: Record<string, unknown> = {};
    for (const [id, node] of Object.entries(data.nodes as Record<string, unknown>))
      nodes[id] = node !== null && typeof node === 'object' ? { ...node, prompt_id: promptId } : node;
    out.nodes = nodes;
  }
  return out;
}
