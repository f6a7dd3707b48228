// `npm run demo`: starts the simulator (2 instances), runs examples/invert.json on the first one,
// waits for completion on the WebSocket, saves the output PNG under ./out/ and exits 0.
// `--serve` keeps the simulator running afterwards (until Ctrl-C).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import { startSimulator } from '../src/simulator/index.ts';

const root = resolve(import.meta.dirname, '..');
const serve = process.argv.includes('--serve');
const sim = await startSimulator({ instances: 2, nodeDelayMs: 50 });
try {
  const base = sim.instances[0]!.url;
  for (const i of sim.instances) console.log(`simulated ComfyUI at ${i.url}`);
  const clientId = `demo-${process.pid}`;
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?clientId=${clientId}`);
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
  });
  const promptId = crypto.randomUUID();
  const done = new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('prompt did not finish within 30 s')), 30_000);
    ws.on('message', (data, binary) => {
      if (binary) return;
      const msg = JSON.parse(data.toString()) as {
        type: string;
        data: { node?: string | null; prompt_id?: string };
      };
      if (msg.type === 'progress' || msg.type === 'executing')
        console.log(`  ${msg.type} ${msg.data.node ?? 'done'}`);
      if (msg.type === 'execution_error') fail(new Error(`execution_error: ${data.toString()}`));
      if (msg.type === 'executing' && msg.data.node === null && msg.data.prompt_id === promptId) {
        clearTimeout(timer);
        ok();
      }
    });
  });
  const prompt = JSON.parse(readFileSync(join(root, 'examples', 'invert.json'), 'utf8'));
  const res = await fetch(`${base}/prompt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, client_id: clientId, prompt_id: promptId }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`POST /prompt answered ${res.status}: ${await res.text()}`);
  await done;
  ws.close();
  const history = (await (await fetch(`${base}/history/${promptId}`)).json()) as Record<
    string,
    { outputs: Record<string, { images: Array<{ filename: string; subfolder: string; type: string }> }> }
  >;
  const image = Object.values(history[promptId]!.outputs)[0]!.images[0]!;
  const q = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type });
  const png = Buffer.from(await (await fetch(`${base}/view?${q}`)).arrayBuffer());
  const outDir = join(root, 'out');
  mkdirSync(outDir, { recursive: true });
  const dest = join(outDir, image.filename);
  writeFileSync(dest, png);
  console.log(`saved ${png.length} bytes to ${dest}`);
  if (serve) {
    console.log('serving; press Ctrl-C to stop');
    await new Promise<void>((ok) => {
      process.once('SIGINT', ok);
      process.once('SIGTERM', ok);
    });
  }
} finally {
  await sim.close();
}
