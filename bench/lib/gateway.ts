// A gateway as a bench process: `comfy-gateway serve` as a child on a free port, ready once it logs
// that it listens. Its stdout (JSON logs) is read and dropped so the pipe never fills; stderr goes
// to the bench's own.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type Dispatcher, request } from 'undici';
import { CHILD_TIMEOUT_MS, freePort, ROOT } from './measure.ts';

/** Starts `serve` with `env` (beside PATH, HOST, PORT and LOG_LEVEL=info); resolves with its URL once it listens. */
export async function startGatewayProcess(
  env: Record<string, string>,
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start in time')), CHILD_TIMEOUT_MS);
    lines.on('line', (line) => {
      if (!line.includes('gateway listening')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  // Keep draining its logs so it never blocks on a full pipe.
  lines.on('line', () => {});
  return { url, child };
}

/** One `POST /prompt_sync` of a JSON `body` (a prompt) through `agent`; throws unless it answers 200. */
export async function promptSync(url: string, body: string, agent: Dispatcher): Promise<void> {
  const res = await request(`${url}/prompt_sync`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    dispatcher: agent,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`prompt_sync ${res.statusCode}: ${text.slice(0, 200)}`);
}
