// Real gateway processes for the tests that kill one (`kill -9`) and start it again: `comfy-gateway
// serve` as a child, ready once it logs that it listens, restartable on the same port (and DATA_DIR),
// and every child still running killed at the end of the file's tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/simulator/index.ts';
import { REPO_ROOT } from './shared.ts';

/** A port that was free a moment ago (listen on 0, read, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** A gateway child process (`comfy-gateway serve`). */
export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  pid: number;
  /** Lines it printed (JSON logs), for diagnostics. */
  log: string[];
  exited: Promise<unknown>;
}

const running = new Set<ChildProcess>();

/**
 * Spawns `serve` with `env` (beside PATH, HOST, PORT and LOG_LEVEL=info) on `port` (default a free
 * one) and resolves once it logs its URL; rejects with its output when it exits or takes longer
 * than `timeoutMs`.
 */
export async function spawnGateway(
  env: Record<string, string>,
  options: { port?: number; timeoutMs?: number } = {},
): Promise<GatewayProcess> {
  const port = options.port ?? (await freePort());
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const log: string[] = [];
  const exited = once(child, 'exit');
  void exited.then(() => running.delete(child));
  child.stderr?.on('data', (d) => log.push(String(d)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`gateway did not start in ${timeoutMs / 1000} s:\n${log.join('\n')}`)),
      timeoutMs,
    );
    lines.on('line', (line) => {
      if (log.length < 2000) log.push(line);
      if (!line.includes('gateway listening')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${log.join('\n')}`));
    });
  });
  return { child, url, pid: child.pid as number, log, exited };
}

/** SIGKILLs every gateway child still running (an after() hook of files that spawn them). */
export function killGateways(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** A simulator and a DATA_DIR that outlive the gateways a test kills and starts again. */
export interface RestartableGateway {
  readonly sim: Simulator;
  readonly dataDir: string;
  /** Starts `serve` on `port` over the simulator and the DATA_DIR; resolves once it listens. */
  start(port: number): Promise<ChildProcess>;
}

/**
 * Registers before/after hooks for a file of kill -9 tests: a simulator (`simulator` options) and
 * a fresh DATA_DIR, every gateway killed and both removed at the end. `env` adds settings.
 */
export function restartableGateway(options: {
  simulator: SimulatorOptions;
  tmpPrefix: string;
  env?: (dataDir: string) => Record<string, string>;
  timeoutMs?: number;
}): RestartableGateway {
  let sim: Simulator | undefined;
  let dataDir: string | undefined;
  before(async () => {
    sim = await startSimulator(options.simulator);
    dataDir = await mkdtemp(join(tmpdir(), options.tmpPrefix));
  });
  after(async () => {
    killGateways();
    await sim?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });
  return {
    get sim() {
      if (!sim) throw new Error('the simulator starts in before()');
      return sim;
    },
    get dataDir() {
      if (!dataDir) throw new Error('DATA_DIR is made in before()');
      return dataDir;
    },
    async start(port) {
      const env = {
        COMFYUI_URLS: this.sim.instances.map((i) => i.url).join(','),
        DATA_DIR: this.dataDir,
        ...options.env?.(this.dataDir),
      };
      return (
        await spawnGateway(env, { port, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) })
      ).child;
    },
  };
}
