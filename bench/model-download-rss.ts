// Gateway RSS while it downloads a 1 GiB model from a loopback server: a real `serve` child
// process, RSS sampled from /proc every 50 ms; prints baseline, peak and the download time.
// Run: node bench/model-download-rss.ts [sizeMiB]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startModelServer } from '../test/support/model-server.ts';

const sizeMiB = Number(process.argv[2] ?? 1024);
const root = new URL('..', import.meta.url).pathname;
const files = await startModelServer(sizeMiB * 1024 * 1024);
const dir = await mkdtemp(join(tmpdir(), 'bench-model-rss-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const child = spawn(join(root, 'node_modules/.bin/node'), ['src/cli/main.ts', 'serve'], {
  cwd: root,
  env: {
    PATH: process.env.PATH,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dir,
    MODELS_DIR: join(dir, 'models'),
    ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
    LOG_LEVEL: 'info',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve) =>
  createInterface({ input: child.stdout! }).on('line', (l) => l.includes('gateway listening') && resolve()),
);
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
const baseline = rss();
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, rss());
}, 50);
const started = Date.now();
const res = await fetch(`http://127.0.0.1:${port}/v1/models/downloads`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ url: `${files.url}/big.safetensors`, directory: 'checkpoints' }),
});
const { id } = (await res.json()) as { id: string };
let status = '';
while (status !== 'completed' && status !== 'failed') {
  await new Promise((r) => setTimeout(r, 200));
  status = (
    (await (await fetch(`http://127.0.0.1:${port}/v1/models/downloads/${id}`)).json()) as { status: string }
  ).status;
}
const seconds = (Date.now() - started) / 1000;
clearInterval(sampler);
console.log(
  JSON.stringify({
    size_mib: sizeMiB,
    status,
    seconds,
    rss_baseline_mib: +baseline.toFixed(1),
    rss_peak_mib: +peak.toFixed(1),
  }),
);
child.kill('SIGTERM');
await files.close();
await rm(dir, { recursive: true, force: true });
