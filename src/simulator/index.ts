// Public surface of the ComfyUI simulator: startSimulator() and the contract types shared with the
// other modules' tests. Everything else in this folder is internal.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SimulatorConfigError } from './errors.ts';
import type { SimulatorFaults } from './faults.ts';
import { SimulatedInstance } from './instance.ts';
import { nodeDefs } from './object-info.ts';

export type { SimulatorFaults } from './faults.ts';
export { SimulatorConfigError, SimulatorError } from './errors.ts';
export { parsePyJson, pyDumps } from './py-json.ts';

/** Options of startSimulator. */
export interface SimulatorOptions {
  host?: string;
  port?: number;
  instances?: number;
  nodeDelayMs?: number;
  dataDir?: string;
  /** A ComfyUI models layout shared by every instance: its files are the loaders' choices. */
  modelsDir?: string;
  logger?: (line: string) => void;
  /** What POST /simulator/crash does; default: the instance's crash(). The CLI exits the process. */
  onCrashRequest?: (instance: SimulatedComfyUI) => void;
}

/** One running simulated ComfyUI. */
export interface SimulatedComfyUI {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  setFaults(faults: Partial<SimulatorFaults>): void;
  clearFaults(): void;
  crash(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
  readonly stats: { promptsExecuted: number; connectedSockets: number; queueLength: number };
}

/** A set of instances started together. */
export interface Simulator {
  instances: SimulatedComfyUI[];
  close(): Promise<void>;
}

class InstanceHandle implements SimulatedComfyUI {
  readonly #inner: SimulatedInstance;
  readonly dataDir: string;
  constructor(inner: SimulatedInstance, dataDir: string) {
    this.#inner = inner;
    this.dataDir = dataDir;
  }
  get url(): string {
    return this.#inner.url;
  }
  get port(): number {
    return this.#inner.port;
  }
  get stats() {
    return this.#inner.stats;
  }
  setFaults(faults: Partial<SimulatorFaults>): void {
    this.#inner.setFaults(faults);
  }
  clearFaults(): void {
    this.#inner.clearFaults();
  }
  crash(): Promise<void> {
    return this.#inner.crash();
  }
  restart(): Promise<void> {
    return this.#inner.restart();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Starts N simulated ComfyUI instances (consecutive ports when port != 0). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const count = options.instances ?? 1;
  const nodeDelayMs = options.nodeDelayMs ?? 0;
  if (!Number.isInteger(count) || count < 1 || count > 256)
    throw new SimulatorConfigError(`instances must be an integer 1-256, got ${count}`);
  if (!Number.isInteger(port) || port < 0 || port + count - 1 > 65535)
    throw new SimulatorConfigError(`port must be 0 or a free port range start, got ${port}`);
  if (!(nodeDelayMs >= 0) || !Number.isFinite(nodeDelayMs))
    throw new SimulatorConfigError(`nodeDelayMs must be >= 0, got ${nodeDelayMs}`);
  const ownDir = options.dataDir === undefined;
  const root = ownDir ? mkdtempSync(join(tmpdir(), 'comfy-sim-')) : resolve(options.dataDir!);
  const logger = options.logger ?? (() => {});
  nodeDefs();
  const handles: InstanceHandle[] = [];
  const cleanup = async () => {
    await Promise.all(handles.map((h) => h.close()));
    if (ownDir) rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) {
      const dataDir = count === 1 && !ownDir ? root : join(root, `instance-${i}`);
      let handle!: InstanceHandle;
      const inst = new SimulatedInstance({
        host,
        port: port === 0 ? 0 : port + i,
        dataDir,
        nodeDelayMs,
        ...(options.modelsDir !== undefined ? { modelsDir: resolve(options.modelsDir) } : {}),
        logger: (line) => logger(`[sim:${i}] ${line}`),
        onCrashRequest: options.onCrashRequest ? () => options.onCrashRequest!(handle) : undefined,
      });
      handle = new InstanceHandle(inst, dataDir);
      handles.push(handle);
      await inst.start();
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    instances: handles,
    close: () => {
      closing ??= cleanup();
      return closing;
    },
  };
}
