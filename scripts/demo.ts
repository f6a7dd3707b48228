// `npm run demo`: the gateway's main job end to end on simulated ComfyUI instances. Starts two
// simulated instances and the gateway in front of them, then submits jobs the ways an app would
// (sync v2 job, async job followed over SSE, /prompt_sync, a named workflow endpoint), prints each
// result, saves the images under ./out/ and keeps serving until Ctrl-C. `--once` exits after the
// jobs instead (CI and tests use it).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import type { Gateway } from '../src/server/index.ts';
import { entryUrl } from '../bin/bundle.js';
import { type Simulator, startSimulator } from '../src/simulator/index.ts';

interface JobOutput {
  node_id: string;
  name: string;
  url: string;
  size_bytes: number;
}
interface Job {
  id: string;
  status: string;
  instance_id?: string;
  outputs: JobOutput[];
  metrics?: { queue_ms: number | null; execution_ms: number | null };
  error: { code: string; message: string } | null;
}

const root = resolve(import.meta.dirname, '..');
const once = process.argv.includes('--once');
const outDir = resolve(process.env.DEMO_OUT_DIR ?? join(root, 'out'));
const invert = JSON.parse(readFileSync(join(root, 'examples', 'invert.json'), 'utf8'));
const examplePng = readFileSync(join(root, 'examples', 'example.png'));

// The gateway as `npm start` runs it: the bundled build when it is current, otherwise the sources.
const { startGateway } = (await import(
  entryUrl('server', new URL('../src/server/index.ts', import.meta.url).href)
)) as typeof import('../src/server/index.ts');

let sim: Simulator | undefined;
let gateway: Gateway | undefined;
try {
  sim = await startSimulator({ port: 0, instances: 2, nodeDelayMs: 40 });
  for (const instance of sim.instances) console.log(`simulated ComfyUI v0.8.0 at ${instance.url}`);
  const config = loadConfig(
    { ...process.env, JOB_STORE: 'memory', DATA_DIR: join(outDir, '.gateway-data') },
    undefined,
    {
      COMFYUI_URLS: sim.instances.map((i) => i.url).join(','),
      WORKFLOWS_DIR: join(root, 'workflows'),
      ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
    },
  );
  // With --once an ephemeral port, so the demo can run beside a gateway that already uses 18188.
  gateway = await startGateway(once ? { ...config, port: 0 } : config, {
    logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }),
  });
  const base = gateway.url;
  console.log(`gateway at ${base} (API docs: ${base}/docs)\n`);
  mkdirSync(outDir, { recursive: true });

  // 1. Synchronous v2 job: the response waits until the job has ended.
  const sync = await call<Job>('POST', '/api/v2/jobs?wait=30', { workflow: withColor(invert, 0x3366cc) });
  await report('1. POST /api/v2/jobs?wait=30 (sync)', sync);

  // 2. Asynchronous v2 job, followed on its SSE event stream until the terminal status.
  const queued = await call<Job>('POST', '/api/v2/jobs', {
    workflow: withColor(invert, 0xcc3366),
    metadata: 'demo',
  });
  console.log(`2. POST /api/v2/jobs (async) -> ${queued.id} ${queued.status}; following its events:`);
  await followEvents(queued.id);
  await report('   GET /api/v2/jobs/{id}', await call<Job>('GET', `/api/v2/jobs/${queued.id}`));

  // 3. The serverless-handler shape, images inline as base64.
  const promptSync = await call<{ prompt_id: string; status: string; images?: Array<{ data: string }> }>(
    'POST',
    '/prompt_sync',
    { prompt: withColor(invert, 0x22aa44), return_image_base64: true },
  );
  const inline = promptSync.images?.[0]?.data;
  if (!inline) throw new Error('/prompt_sync returned no inline image');
  const syncFile = join(outDir, `prompt_sync_${promptSync.prompt_id}.png`);
  writeFileSync(syncFile, Buffer.from(inline, 'base64'));
  console.log(`3. POST /prompt_sync -> ${promptSync.status}; image saved to ${syncFile}`);

  // 4. A named workflow endpoint from ./workflows, with the image given as a data URI.
  const named = await call<Job>('POST', '/v1/workflows/invert?wait=30', {
    parameters: { image: `data:image/png;base64,${examplePng.toString('base64')}` },
  });
  await report('4. POST /v1/workflows/invert?wait=30', named);

  const health = await call<{ status: string; instances: Array<{ id: string; state: string }> }>(
    'GET',
    '/health',
  );
  console.log(`\n/health: ${health.status}; ${health.instances.map((i) => `${i.id} ${i.state}`).join(', ')}`);
  if (once) {
    console.log('demo finished');
  } else {
    console.log(`\nThe gateway keeps serving at ${base} — try:`);
    console.log(`  curl -s -X POST '${base}/api/v2/jobs?wait=30' -H 'content-type: application/json' \\`);
    console.log(`    -d '{"workflow": ${JSON.stringify(invert)}}'`);
    console.log(`  open ${base}/docs for the API reference. Ctrl-C to stop.`);
    await new Promise<void>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
  }
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await gateway?.close();
  await sim?.close();
}

/** Calls the gateway and parses its JSON answer; a non-2xx answer is an error. */
async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(gateway!.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** Prints a job and saves its outputs under outDir. */
async function report(title: string, job: Job): Promise<void> {
  if (job.status !== 'succeeded') {
    throw new Error(`${title}: job ${job.id} ended ${job.status}: ${job.error?.message ?? ''}`);
  }
  const timing = job.metrics ? ` (queue ${job.metrics.queue_ms} ms, run ${job.metrics.execution_ms} ms)` : '';
  console.log(`${title} -> ${job.status} on ${job.instance_id ?? '?'}${timing}`);
  for (const output of job.outputs) {
    const res = await fetch(output.url, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`GET ${output.url} answered ${res.status}`);
    const file = join(outDir, `${job.id}_${output.name}`);
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    console.log(`   output of node ${output.node_id} saved to ${file}`);
  }
}

/** Reads a job's SSE stream and prints status/progress lines until the terminal status. */
async function followEvents(id: string): Promise<void> {
  const res = await fetch(`${gateway!.url}/api/v2/jobs/${id}/events`, {
    headers: { accept: 'text/event-stream' },
    signal: AbortSignal.timeout(60_000),
  });
  if (!res.ok || !res.body) throw new Error(`events answered ${res.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body) {
    buffered += decoder.decode(chunk, { stream: true });
    let end = buffered.indexOf('\n\n');
    while (end >= 0) {
      const frame = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      end = buffered.indexOf('\n\n');
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (!event || !data) continue;
      const payload = JSON.parse(data) as { status?: string; value?: number; current_node?: string };
      if (event === 'status') console.log(`   event status: ${payload.status}`);
      else if (event === 'progress')
        console.log(
          `   event progress: ${Math.round((payload.value ?? 0) * 100)}% (${payload.current_node ?? '-'})`,
        );
      else console.log(`   event ${event}`);
      if (
        event === 'status' &&
        ['succeeded', 'failed', 'canceled', 'expired'].includes(payload.status ?? '')
      ) {
        return;
      }
    }
  }
}

/** The example prompt with another EmptyImage colour, so each job really executes. */
function withColor(prompt: Record<string, { inputs: Record<string, unknown> }>, color: number) {
  const copy = structuredClone(prompt);
  for (const node of Object.values(copy)) if ('color' in node.inputs) node.inputs.color = color;
  return copy;
}
