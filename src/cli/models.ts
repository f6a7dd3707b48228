// `comfy-gateway models download URL --dir checkpoints` and `comfy-gateway models list`: the
// gateway's /v1/models API from the command line. A download follows the task's SSE stream with
// a progress line until it ends; the exit code says how it ended (0 completed, 1 otherwise).
import type { Command } from 'commander';

const DEFAULT_GATEWAY = 'http://127.0.0.1:18188';

interface Task {
  id: string;
  status: string;
  directory: string;
  filename: string;
  bytes: number;
  total: number | null;
  speed: number | null;
  computed_sha256: string | null;
  error: { code: string; message: string } | null;
}

/** A usage or gateway error: printed as one line, exit code 2 (usage) or 1. */
class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function baseUrl(raw: string | undefined): string {
  const url = raw ?? DEFAULT_GATEWAY;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new CliError(`--gateway must be an http(s) URL, got ${JSON.stringify(url)}`, 2);
  }
  return url.replace(/\/+$/, '');
}

function headers(apiKey: string | undefined, json = false): Record<string, string> {
  return {
    ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    ...(json ? { 'content-type': 'application/json' } : {}),
  };
}

async function call(url: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new CliError(`cannot reach ${url}: ${(err as Error).message}`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    throw new CliError(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  return body;
}

function size(n: number | null): string {
  if (n === null) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function line(task: Task): string {
  const pct = task.total ? ` ${Math.floor((task.bytes / task.total) * 100)}%` : '';
  const speed = task.speed ? ` ${size(task.speed)}/s` : '';
  return `${task.directory}/${task.filename}: ${task.status}${pct} ${size(task.bytes)} of ${size(task.total)}${speed}`;
}

/** Follows a task's event stream until it has finished; returns the last task. */
async function follow(
  base: string,
  id: string,
  apiKey: string | undefined,
  onTask: (t: Task) => void,
): Promise<Task> {
  const res = await fetch(`${base}/v1/models/downloads/${id}/events`, {
    headers: { accept: 'text/event-stream', ...headers(apiKey) },
  });
  if (res.status !== 200 || !res.body) throw new CliError(`events: HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let last: Task | undefined;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('');
      if (!data) continue;
      last = JSON.parse(data) as Task;
      onTask(last);
    }
  }
  if (!last) throw new CliError('the event stream ended without a task');
  return last;
}

async function download(
  url: string,
  opts: { dir: string; filename?: string; sha256?: string; gateway?: string; apiKey?: string; wait: boolean },
): Promise<number> {
  const base = baseUrl(opts.gateway);
  const task = (await call(`${base}/v1/models/downloads`, {
    method: 'POST',
    headers: headers(opts.apiKey, true),
    body: JSON.stringify({
      url,
      directory: opts.dir,
      ...(opts.filename ? { filename: opts.filename } : {}),
      ...(opts.sha256 ? { sha256: opts.sha256 } : {}),
    }),
  })) as Task & { joined: boolean };
  process.stderr.write(`${task.joined ? 'joined' : 'started'} download ${task.id}\n`);
  if (!opts.wait) {
    process.stdout.write(`${task.id}\n`);
    return 0;
  }
  const tty = process.stderr.isTTY;
  let lastPrinted = 0;
  const final = await follow(base, task.id, opts.apiKey, (t) => {
    const now = Date.now();
    if (tty) process.stderr.write(`\r\x1b[K${line(t)}`);
    else if (now - lastPrinted >= 5000 || t.status !== 'downloading') {
      lastPrinted = now;
      process.stderr.write(`${line(t)}\n`);
    }
  });
  if (tty) process.stderr.write('\n');
  if (final.status === 'completed') {
    process.stdout.write(`${final.directory}/${final.filename} sha256=${final.computed_sha256 ?? '?'}\n`);
    return 0;
  }
  process.stderr.write(
    `${final.status}${final.error ? `: ${final.error.code}: ${final.error.message}` : ''}\n`,
  );
  return 1;
}

async function list(opts: { gateway?: string; apiKey?: string; json?: boolean }): Promise<number> {
  const base = baseUrl(opts.gateway);
  const models = (await call(`${base}/v1/models`, { headers: headers(opts.apiKey) })) as {
    folders: Record<string, Array<{ name: string; instances: string[]; size?: number }>>;
  };
  const downloads = (await call(`${base}/v1/models/downloads`, { headers: headers(opts.apiKey) })) as {
    downloads: Task[];
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ...models, downloads: downloads.downloads }, null, 2)}\n`);
    return 0;
  }
  for (const [folder, entries] of Object.entries(models.folders)) {
    if (entries.length === 0) continue;
    process.stdout.write(`${folder}/\n`);
    for (const m of entries) {
      const where = m.instances.length ? m.instances.join(', ') : 'no instance';
      process.stdout.write(`  ${m.name}  ${m.size !== undefined ? size(m.size) : ''}  [${where}]\n`);
    }
  }
  if (downloads.downloads.length > 0) {
    process.stdout.write('downloads:\n');
    for (const t of downloads.downloads) process.stdout.write(`  ${t.id}  ${line(t)}\n`);
  }
  return 0;
}

async function run(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

/** Adds the `models` subcommand group. */
export function register(program: Command): void {
  const models = program.command('models').description("Model files of the gateway's pool (/v1/models)");
  models
    .command('download <url>')
    .description('download a model into MODELS_DIR on the gateway, with a progress line')
    .requiredOption(
      '--dir <folder>',
      'model folder: checkpoints, loras, vae, text_encoders, diffusion_models…',
    )
    .option('--filename <name>', 'file name (default: the last segment of the URL path)')
    .option('--sha256 <hex>', 'expected SHA-256; a mismatch fails the download and leaves no file')
    .option('--gateway <url>', `comfy-gateway base URL (default ${DEFAULT_GATEWAY})`)
    .option('--api-key <key>', 'gateway API key (default: $COMFY_GATEWAY_API_KEY)')
    .option('--no-wait', 'print the task id and return at once')
    .action(
      (
        url: string,
        opts: {
          dir: string;
          filename?: string;
          sha256?: string;
          gateway?: string;
          apiKey?: string;
          wait: boolean;
        },
      ) => run(() => download(url, { ...opts, apiKey: opts.apiKey ?? process.env.COMFY_GATEWAY_API_KEY })),
    );
  models
    .command('list')
    .description('models per folder with the instances that have them, and the download tasks')
    .option('--gateway <url>', `comfy-gateway base URL (default ${DEFAULT_GATEWAY})`)
    .option('--api-key <key>', 'gateway API key (default: $COMFY_GATEWAY_API_KEY)')
    .option('--json', 'print the raw JSON')
    .action((opts: { gateway?: string; apiKey?: string; json?: boolean }) =>
      run(() => list({ ...opts, apiKey: opts.apiKey ?? process.env.COMFY_GATEWAY_API_KEY })),
    );
}
