// A gateway killed with SIGKILL in the middle of a model download resumes the task after it is
// started again: from the bytes of its .part file, with Range, to the right final hash.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { readEvents } from '../support/gateway.ts';
import { contentSha256, type ModelServer, startModelServer } from '../support/model-server.ts';
import { REPO_ROOT } from '../support/shared.ts';

let sim: Simulator;
let files: ModelServer;
let dataDir: string;
let modelsDir: string;
const children = new Set<ChildProcess>();

before(async () => {
  sim = await startSimulator({ port: 0 });
  files = await startModelServer();
  dataDir = await mkdtemp(join(tmpdir(), 'gw-models-restart-'));
  modelsDir = join(dataDir, 'models');
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await sim.close();
  await files.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

async function startChild(port: number): Promise<ChildProcess> {
  const child = spawn(join(REPO_ROOT, 'node_modules', '.bin', 'node'), ['src/cli/main.ts', 'serve'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      COMFYUI_URLS: sim.instances.map((i) => i.url).join(','),
      DATA_DIR: dataDir,
      MODELS_DIR: modelsDir,
      ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const stderr: string[] = [];
  child.stderr?.on('data', (d) => stderr.push(String(d)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start in 20 s')), 20_000);
    lines.on('line', (line) => {
      if (line.includes('gateway listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}: ${stderr.join('')}`));
    });
  });
  return child;
}

test('kill -9 mid-download: after the restart the task resumes with Range and completes with the right hash', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child = await startChild(port);
  const url = `${files.url}/restart.safetensors?rate=${8 * 1024 * 1024}`;
  const res = await fetch(`${base}/v1/models/downloads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url, directory: 'checkpoints', sha256: contentSha256(files.size) }),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  const stop = new AbortController();
  let bytesAtKill = 0;
  for await (const frame of readEvents(
    `${base}/v1/models/downloads/${id}/events`,
    AbortSignal.any([stop.signal, AbortSignal.timeout(30_000)]),
  )) {
    if (frame.event === 'download' && frame.data.bytes >= 5 * 1024 * 1024) {
      bytesAtKill = frame.data.bytes;
      break;
    }
  }
  stop.abort();
  assert.ok(bytesAtKill > 0, 'the download was under way');
  child.kill('SIGKILL');
  await once(child, 'exit');
  const parts = (await readdir(join(modelsDir, 'checkpoints'))).filter((f) => f.endsWith('.part'));
  assert.equal(parts.length, 1, 'the partial file survived the kill');

  child = await startChild(port);
  let last: { status: string; bytes: number; computed_sha256: string | null; error: unknown } | undefined;
  for await (const frame of readEvents(
    `${base}/v1/models/downloads/${id}/events`,
    AbortSignal.timeout(60_000),
  )) {
    if (frame.event === 'download') last = frame.data;
  }
  assert.equal(last?.status, 'completed', JSON.stringify(last?.error));
  assert.equal(last?.bytes, files.size);
  const ranges = files.requests.filter((r) => r.path === '/restart.safetensors').map((r) => r.range);
  assert.equal(ranges.length, 2, `requests: ${JSON.stringify(ranges)}`);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
  assert.ok(resumedAt >= bytesAtKill, `resumed at ${ranges[1]} after ${bytesAtKill} bytes had landed`);
  const hash = createHash('sha256');
  await pipeline(createReadStream(join(modelsDir, 'checkpoints', 'restart.safetensors')), hash);
  assert.equal(hash.digest('hex'), contentSha256(files.size));
  assert.deepEqual(
    (await readdir(join(modelsDir, 'checkpoints'))).filter((f) => f.endsWith('.part')),
    [],
  );
  child.kill('SIGTERM');
  await once(child, 'exit');
});
