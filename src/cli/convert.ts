// `comfy-gateway convert <ui.json>`: converts a saved UI workflow into the API prompt, with node
// definitions from a file, a live server's /object_info, or the bundled recording.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import {
  type ConversionIssue,
  detectFormat,
  type NodeDefs,
  toApiPrompt,
  validatePrompt,
  WorkflowError,
} from '../workflow/index.ts';

/** Options of the convert command. */
export interface ConvertCommandOptions {
  objectInfo?: string;
  server?: string;
  output?: string;
  partial?: boolean;
  timeout?: string;
}

/** Where the command writes (injectable so tests and other commands can capture it). */
export interface ConvertIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
}

const BUNDLED_OBJECT_INFO = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'simulator',
  'data',
  'object_info.json',
);

class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Loads node definitions from a file, a server URL (`/object_info`), or the bundled recording. */
export async function loadNodeDefs(opts: {
  objectInfo?: string;
  server?: string;
  timeoutMs: number;
}): Promise<NodeDefs> {
  if (opts.objectInfo && opts.server) throw new CliError('use either --object-info or --server, not both', 2);
  let text: string;
  let where: string;
  if (opts.server) {
    let url: URL;
    try {
      url = new URL('object_info', opts.server.endsWith('/') ? opts.server : `${opts.server}/`);
    } catch {
      throw new CliError(`--server: "${opts.server}" is not a URL`, 2);
    }
    where = url.href;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs) });
    } catch (e) {
      const reason =
        (e as Error).name === 'TimeoutError' ? `no answer within ${opts.timeoutMs} ms` : (e as Error).message;
      throw new CliError(`cannot fetch ${where}: ${reason}`);
    }
    if (!res.ok) throw new CliError(`cannot fetch ${where}: HTTP ${res.status}`);
    text = await res.text();
  } else {
    where = opts.objectInfo ?? BUNDLED_OBJECT_INFO;
    try {
      text = await readFile(where, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${where}: ${(e as Error).message}`);
    }
  }
  let defs: unknown;
  try {
    defs = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${where} is not JSON: ${(e as Error).message}`);
  }
  if (defs === null || typeof defs !== 'object' || Array.isArray(defs))
    throw new CliError(`${where} is not an /object_info map`);
  return defs as NodeDefs;
}

function formatIssue(i: ConversionIssue): string {
  return `${i.severity} [${i.code}] ${i.message}`;
}

/** Runs the convert command; returns the process exit code (0 ok, 1 conversion failed, 2 usage). */
export async function convertCommand(
  file: string,
  opts: ConvertCommandOptions,
  io: ConvertIo,
): Promise<number> {
  try {
    const timeoutMs = Number(opts.timeout ?? 15000);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new CliError('--timeout must be a positive number of milliseconds', 2);
    let text: string;
    try {
      text = file === '-' ? await io.readStdin() : await readFile(file, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
    }
    let workflow: unknown;
    try {
      workflow = JSON.parse(text);
    } catch (e) {
      throw new CliError(`${file} is not JSON: ${(e as Error).message}`);
    }
    const defs = await loadNodeDefs({ ...opts, timeoutMs });
    const format = detectFormat(workflow);
    let prompt: unknown;
    let issues: ConversionIssue[];
    if (format === 'ui') {
      const r = toApiPrompt(workflow, defs, { unresolved: opts.partial ? 'partial' : 'error' });
      prompt = r.prompt;
      issues = [
        ...r.warnings,
        ...validatePrompt(r.prompt, defs).map((i) => ({ ...i, severity: 'warning' as const })),
      ];
    } else if (format === 'api') {
      io.stderr(`note: ${file} is already an API prompt; validating it only\n`);
      prompt = workflow;
      issues = validatePrompt(workflow, defs);
    } else {
      throw new CliError(`${file} is neither a UI workflow (nodes + links) nor an API prompt`);
    }
    for (const i of issues) io.stderr(`${formatIssue(i)}\n`);
    const json = `${JSON.stringify(prompt, null, 2)}\n`;
    if (opts.output) await writeFile(opts.output, json);
    else io.stdout(json);
    return issues.some((i) => i.severity === 'error') ? 1 : 0;
  } catch (e) {
    if (e instanceof WorkflowError) {
      io.stderr(`error [${e.code}] ${e.message}\n`);
      for (const i of e.issues) io.stderr(`  ${formatIssue(i)}\n`);
      return 1;
    }
    if (e instanceof CliError) {
      io.stderr(`error: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}

/** Adds `convert` to the command line. */
export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a UI workflow (saved from the ComfyUI editor) into an API prompt')
    .argument('<workflow>', 'UI workflow JSON file, or - for stdin')
    .option(
      '--object-info <file>',
      'node definitions (/object_info JSON); default: the bundled ComfyUI v0.8.0 recording',
    )
    .option('--server <url>', 'fetch node definitions from this ComfyUI (or gateway) URL')
    .option('-o, --output <file>', 'write the API prompt here instead of stdout')
    .option('--partial', 'emit what can be converted even when some custom nodes cannot be resolved')
    .option('--timeout <ms>', 'timeout for --server', '15000')
    .action(async (file: string, opts: ConvertCommandOptions) => {
      process.exitCode = await convertCommand(file, opts, {
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
        readStdin,
      });
    });
}
