// Runs one prompt the way ComfyUI's PromptExecutor does: cache signatures, execution_cached, the
// "UX friendly" node order, per-node progress_state/executing/executed messages, interrupts (checked
// when a node starts and at progress ticks), execution errors with ComfyUI's payload, and the
// history entry. Faults (delay, failure, hang, socket drop) are applied here.
import { hash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { InstanceStoppedError, InterruptedError, NodeExecutionError } from './errors.ts';
import type { SimulatorFaults } from './faults.ts';
import { promptFaults } from './faults.ts';
import type { InstanceFiles } from './files.ts';
import type { HistoryEntry } from './history.ts';
import type { ImageBatch } from './image.ts';
import { runNode, type NodeResult, type NodeRunContext } from './nodes.ts';
import { nodeDef } from './object-info.ts';
import type { QueueItem } from './prompt-queue.ts';
import { ordered, PyFloat, pyDumps, pyKeys } from './py-json.ts';
import type { WsHub } from './ws-hub.ts';

/** What the executor needs from its instance. */
export interface ExecutorDeps {
  hub: WsHub;
  files: InstanceFiles;
  faults(): SimulatorFaults;
  log(line: string): void;
}

interface CacheEntry {
  outputs: unknown[];
  ui: Record<string, unknown> | undefined;
}

const TB_HEAD = [
  '  File "/opt/comfyui-simulator/execution.py", line 518, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n',
  '  File "/opt/comfyui-simulator/execution.py", line 329, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n',
  '  File "/opt/comfyui-simulator/execution.py", line 303, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n',
  '  File "/opt/comfyui-simulator/execution.py", line 291, in process_inputs\n    result = f(**inputs)\n',
];

function isLink(v: unknown): v is [string, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'number';
}

function formatValue(v: unknown): unknown {
  if (
    v === null ||
    typeof v === 'string' ||
    typeof v === 'number' ||
    typeof v === 'boolean' ||
    v instanceof PyFloat
  )
    return v;
  if (typeof v === 'bigint') return v;
  if (v && typeof v === 'object' && 'frames' in v) {
    const img = v as ImageBatch;
    const c = img.frames[0]?.length === img.width * img.height ? '' : ', 3';
    return `tensor(<simulated ${img.frames.length}x${img.height}x${img.width}${c} tensor>)`;
  }
  if (v && typeof v === 'object' && 'simulated' in v)
    return `<simulated ${(v as { simulated: string }).simulated}>`;
  return pyDumps(v);
}

/** The execution engine of one instance (its cache and interrupt flag live here). */
export class Executor {
  readonly #deps: ExecutorDeps;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #objects = new Map<string, Record<string, unknown>>();
  #interruptFlag = false;
  #interruptWaiters = new Set<() => void>();
  /** Client id and node of the prompt being executed (for the reconnect greeting). */
  currentClient: string | null = null;
  currentNode: string | null = null;
  currentPromptId: string | null = null;

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
  }

  /** Sets the interrupt flag (seen when the next node starts or at a progress tick). */
  interrupt(): void {
    this.#interruptFlag = true;
    for (const w of this.#interruptWaiters) w();
    this.#interruptWaiters.clear();
  }

  /** Drops the node output cache (POST /free with free_memory). */
  freeMemory(): void {
    this.#cache.clear();
  }

  #waitInterrupt(signal: AbortSignal): Promise<void> {
    if (this.#interruptFlag) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#interruptWaiters.delete(done);
        reject(new InstanceStoppedError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#interruptWaiters.add(done);
    });
  }

  /** Executes one queue item; returns its history entry. */
  async execute(item: QueueItem, signal: AbortSignal): Promise<HistoryEntry> {
    const { hub } = this.#deps;
    const prompt = item.prompt as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    const promptId = item.promptId;
    const clientId = typeof item.extraData.client_id === 'string' ? item.extraData.client_id : null;
    const pf = promptFaults(item.extraData);
    const faults = this.#deps.faults();
    const delayMs = pf.nodeDelayMs ?? faults.nodeDelayMs;
    const failAt = pf.failAtNode ?? faults.failAtNode;
    const hang = pf.hang === true || faults.hang;
    const dropAt = pf.dropWsAtNode ?? faults.dropWebSocketAtNode;
    this.#interruptFlag = false;
    this.currentClient = clientId;
    this.currentPromptId = promptId;
    const messages: Array<[string, Record<string, unknown>]> = [];
    const addMessage = (event: string, data: Record<string, unknown>, broadcast: boolean) => {
      messages.push([event, data]);
      if (clientId !== null || broadcast) hub.send(event, data, clientId);
    };
    addMessage(
      'execution_start',
      ordered([
        ['prompt_id', promptId],
        ['timestamp', Date.now()],
      ]),
      false,
    );

    // Cache signatures (input signature, recursively over links; LoadImage adds its file hash).
    const sigs = new Map<string, string>();
    const sigOf = (id: string, depth = 0): string => {
      const hit = sigs.get(id);
      if (hit) return hit;
      const node = prompt[id]!;
      // One string hashed at once: the same bytes the digest used to get in pieces.
      let text = `${node.class_type}\0`;
      if (node.class_type === 'LoadImage' || node.class_type === 'LoadImageMask') {
        const p = this.#deps.files.annotatedPath(String(node.inputs.image));
        text += p ? this.#deps.files.fileHash(p) : '';
      }
      for (const k of pyKeys(node.inputs).sort()) {
        const v = node.inputs[k];
        text += `${k}=`;
        if (isLink(v) && Object.hasOwn(prompt, v[0]) && depth < 10_000)
          text += `link:${sigOf(v[0], depth + 1)}:${v[1]}`;
        else text += pyDumps(v);
        text += '\0';
      }
      const s = hash('sha256', text, 'hex');
      sigs.set(id, s);
      return s;
    };
    const ids = pyKeys(prompt);
    for (const id of ids) sigOf(id);
    const cachedNodes = ids.filter((id) => this.#cache.has(sigs.get(id)!));
    addMessage(
      'execution_cached',
      ordered([
        ['nodes', cachedNodes],
        ['prompt_id', promptId],
        ['timestamp', Date.now()],
      ]),
      false,
    );

    // Execution list: pending nodes in ComfyUI's insertion order, with their blockers.
    const pending = new Map<string, true>();
    const blockCount = new Map<string, number>();
    const blocking = new Map<string, Set<string>>();
    const isCached = (id: string) => this.#cache.has(sigs.get(id)!);
    for (const out of item.outputs) {
      const stack = [out];
      const links: Array<[string, string]> = [];
      while (stack.length > 0) {
        const id = stack.pop()!;
        if (pending.has(id)) continue;
        pending.set(id, true);
        blockCount.set(id, 0);
        blocking.set(id, new Set());
        const inputs = prompt[id]!.inputs;
        for (const k of pyKeys(inputs)) {
          const v = inputs[k];
          if (!isLink(v)) continue;
          if (!isCached(v[0])) stack.push(v[0]);
          links.push([v[0], id]);
        }
      }
      for (const [from, to] of links) {
        if (isCached(from)) continue;
        const b = blocking.get(from);
        if (!b || b.has(to)) continue;
        b.add(to);
        blockCount.set(to, (blockCount.get(to) ?? 0) + 1);
      }
    }
    const isOutput = (id: string) => nodeDef(prompt[id]!.class_type)?.output_node === true;
    const pick = (ready: string[]): string => {
      for (const id of ready) if (isOutput(id)) return id;
      for (const id of ready) for (const b of blocking.get(id) ?? []) if (isOutput(b)) return id;
      for (const id of ready)
        for (const b of blocking.get(id) ?? [])
          for (const b2 of blocking.get(b) ?? []) if (isOutput(b2)) return id;
      return ready[0]!;
    };

    // progress_state bookkeeping: a cumulative snapshot of every started node.
    const states = new Map<string, { value: unknown; max: unknown; state: string }>();
    const sendState = () => {
      const nodes = new Map<string, unknown>();
      for (const [id, s] of states) {
        nodes.set(
          id,
          ordered([
            ['value', s.value],
            ['max', s.max],
            ['state', s.state],
            ['node_id', id],
            ['prompt_id', promptId],
            ['display_node_id', id],
            ['parent_node_id', null],
            ['real_node_id', id],
          ]),
        );
      }
      hub.send(
        'progress_state',
        ordered([
          ['prompt_id', promptId],
          ['nodes', nodes],
        ]),
        clientId,
      );
    };
    const finish = (id: string) => {
      const s = states.get(id) ?? { value: 0, max: 1, state: 'running' };
      s.state = 'finished';
      s.value = s.max;
      states.set(id, s);
      sendState();
    };

    const outputsUi = new Map<string, unknown>();
    const meta = new Map<string, unknown>();
    const executed: string[] = [];
    const values = new Map<string, unknown[]>();
    let failure: {
      event: 'execution_error' | 'execution_interrupted';
      data: Record<string, unknown>;
    } | null = null;

    const recordUi = (id: string, ui: Record<string, unknown> | undefined) => {
      if (!ui || pyKeys(ui).length === 0) return;
      outputsUi.set(id, ui);
      meta.set(
        id,
        ordered([
          ['node_id', id],
          ['display_node', id],
          ['parent_node', null],
          ['real_node_id', id],
        ]),
      );
    };

    try {
      while (pending.size > 0) {
        if (signal.aborted) throw new InstanceStoppedError();
        const ready = [...pending.keys()].filter((id) => blockCount.get(id) === 0);
        if (ready.length === 0)
          throw new NodeExecutionError('graph.DependencyCycleError', 'Dependency cycle detected');
        const id = pick(ready);
        const node = prompt[id]!;
        const sig = sigs.get(id)!;
        const hit = this.#cache.get(sig);
        if (hit) {
          if (clientId !== null) {
            hub.send('executed', executedMessage(id, hit.ui ?? null, promptId), clientId);
          }
          finish(id);
          recordUi(id, hit.ui);
          values.set(id, hit.outputs);
        } else {
          states.set(id, { value: new PyFloat(0), max: new PyFloat(1), state: 'running' });
          sendState();
          this.currentNode = id;
          if (dropAt !== null && dropAt === id) hub.dropAll();
          if (clientId !== null) {
            hub.send(
              'executing',
              ordered([
                ['node', id],
                ['display_node', id],
                ['prompt_id', promptId],
              ]),
              clientId,
            );
          }
          // Resolve inputs (cached upstream outputs come from the cache).
          const inputs: Record<string, unknown> = {};
          const currentInputs: Array<[string, unknown]> = [];
          for (const k of pyKeys(node.inputs)) {
            const v = node.inputs[k];
            let val: unknown = v;
            if (isLink(v)) {
              const src = values.get(v[0]) ?? this.#cache.get(sigs.get(v[0])!)?.outputs;
              val = src?.[v[1]];
            }
            inputs[k] = val;
            currentInputs.push([k, [formatValue(val)]]);
          }
          const objKey = `${id}:${node.class_type}`;
          let state = this.#objects.get(objKey);
          if (!state) {
            state = {};
            this.#objects.set(objKey, state);
          }
          let pendingImage: Buffer | null = null;
          const flushImage = () => {
            if (!pendingImage) return;
            const png = pendingImage;
            pendingImage = null;
            if (clientId !== null && hub.supportsPreviewMetadata(clientId)) {
              const metaJson = Buffer.from(
                pyDumps(
                  ordered([
                    ['node_id', id],
                    ['prompt_id', promptId],
                    ['display_node_id', id],
                    ['parent_node_id', null],
                    ['real_node_id', id],
                    ['image_type', 'image/png'],
                  ]),
                ),
              );
              const head = Buffer.alloc(8);
              head.writeUInt32BE(4, 0);
              head.writeUInt32BE(metaJson.length, 4);
              hub.sendBinary(Buffer.concat([head, metaJson, png]), clientId);
            } else {
              const head = Buffer.alloc(8);
              head.writeUInt32BE(1, 0);
              head.writeUInt32BE(2, 4);
              hub.sendBinary(Buffer.concat([head, png]), clientId);
            }
          };
          const checkInterrupt = () => {
            if (this.#interruptFlag) throw new InterruptedError();
          };
          const ctx: NodeRunContext = {
            nodeId: id,
            classType: node.class_type,
            promptId,
            prompt: item.prompt,
            extraData: item.extraData,
            files: this.#deps.files,
            state,
            signature: sig,
            def: nodeDef(node.class_type)!,
            progress: async (value, max) => {
              states.set(id, { value, max, state: 'running' });
              sendState();
              const metaClient = clientId !== null && hub.supportsPreviewMetadata(clientId);
              if (metaClient) flushImage();
              hub.send(
                'progress',
                ordered([
                  ['value', value],
                  ['max', max],
                  ['prompt_id', promptId],
                  ['node', id],
                ]),
                clientId,
              );
              flushImage();
              checkInterrupt();
            },
            sendImage: (png) => {
              flushImage();
              pendingImage = png;
            },
            sendText: (text) => {
              // server.send_progress_text: event 3, then the node id's length and bytes, then the text.
              const node = Buffer.from(id);
              const head = Buffer.alloc(8);
              head.writeUInt32BE(3, 0);
              head.writeUInt32BE(node.length, 4);
              hub.sendBinary(Buffer.concat([head, node, Buffer.from(text)]), null);
            },
            simulatedWork: async () => {
              if (delayMs > 0) {
                try {
                  await sleep(delayMs, undefined, { signal });
                } catch {
                  throw new InstanceStoppedError();
                }
              }
            },
          };
          let result: NodeResult;
          try {
            checkInterrupt();
            if (hang) {
              await this.#waitInterrupt(signal);
              checkInterrupt();
            }
            if (failAt !== null && failAt === id) {
              const fe = faults.failException;
              throw new NodeExecutionError(
                fe?.type ?? 'RuntimeError',
                fe?.message ??
                  `Simulated failure in node ${id} (${node.class_type}) injected by the simulator`,
                [
                  '  File "/opt/comfyui-simulator/simulator.py", line 1, in fail_at_node\n    raise RuntimeError(message)\n',
                ],
              );
            }
            result = await runNode(inputs, ctx);
            flushImage();
          } catch (err) {
            // Both failure messages open with where the prompt stopped, in ComfyUI's key order.
            const where: Array<[string, unknown]> = [
              ['prompt_id', promptId],
              ['node_id', id],
              ['node_type', node.class_type],
              ['executed', [...executed]],
            ];
            if (err instanceof InterruptedError) {
              failure = {
                event: 'execution_interrupted',
                data: ordered([...where, ['timestamp', Date.now()]]),
              };
              break;
            }
            if (err instanceof InstanceStoppedError) throw err;
            const ne =
              err instanceof NodeExecutionError
                ? err
                : new NodeExecutionError(
                    err instanceof Error ? err.constructor.name : 'Exception',
                    String((err as Error)?.message ?? err),
                  );
            failure = {
              event: 'execution_error',
              data: ordered([
                ...where,
                ['exception_message', `${ne.message}\n`],
                ['exception_type', ne.exceptionType],
                ['traceback', [...TB_HEAD, ...ne.traceback]],
                ['current_inputs', ordered(currentInputs)],
                ['current_outputs', ids],
                ['timestamp', Date.now()],
              ]),
            };
            break;
          }
          values.set(id, result.outputs);
          this.#cache.set(sig, {
            outputs: result.outputs,
            ui: result.ui && pyKeys(result.ui).length > 0 ? result.ui : undefined,
          });
          if (result.ui && pyKeys(result.ui).length > 0) {
            recordUi(id, result.ui);
            if (clientId !== null) {
              hub.send('executed', executedMessage(id, result.ui, promptId), clientId);
            }
          }
          finish(id);
        }
        executed.push(id);
        pending.delete(id);
        for (const b of blocking.get(id) ?? []) blockCount.set(b, (blockCount.get(b) ?? 1) - 1);
      }
    } finally {
      this.currentNode = null;
    }

    if (failure) {
      addMessage(failure.event, failure.data, failure.event === 'execution_interrupted');
    } else {
      addMessage(
        'execution_success',
        ordered([
          ['prompt_id', promptId],
          ['timestamp', Date.now()],
        ]),
        false,
      );
    }
    // Keep only what this prompt used, like ComfyUI's clean_unused().
    const used = new Set(sigs.values());
    for (const k of [...this.#cache.keys()]) if (!used.has(k)) this.#cache.delete(k);
    // Node objects of this prompt's (id, class) pairs stay, executed or not (those that ran are among them).
    const live = new Set(ids.map((i) => `${i}:${prompt[i]!.class_type}`));
    for (const k of [...this.#objects.keys()]) if (!live.has(k)) this.#objects.delete(k);
    this.currentClient = null;
    this.currentPromptId = null;
    return {
      item,
      outputs: outputsUi,
      meta,
      status: {
        status_str: failure ? 'error' : 'success',
        completed: !failure,
        messages,
      },
    };
  }
}

/** ComfyUI's `executed` message of one node, in its key order. */
function executedMessage(nodeId: string, output: unknown, promptId: string): Record<string, unknown> {
  return ordered([
    ['node', nodeId],
    ['display_node', nodeId],
    ['output', output],
    ['prompt_id', promptId],
  ]);
}
