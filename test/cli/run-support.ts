// Shared by the `run` command tests: runs the real CLI as a child process (bounded, always reaped)
// and reads the PNGs it writes.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { REPO_ROOT } from '../support/shared.ts';

/** What one CLI invocation produced. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `comfy-gateway <args>` with the project's Node; kills it (and fails) after `timeoutMs`. */
export async function runCli(
  args: string[],
  options: {
    timeoutMs?: number;
    env?: Record<string, string>;
    /** Called with all of stderr so far after each chunk (e.g. to send a signal at a given point). */
    onStderr?: (text: string, child: ChildProcess) => void;
  } = {},
): Promise<CliResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    options.onStderr?.(stderr, child);
  });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    if (signal === 'SIGKILL')
      throw new Error(`CLI did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    return { code, signal, stdout, stderr, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temp directory and its remover. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Decodes a PNG file. */
export async function readPng(path: string): Promise<PNG> {
  return PNG.sync.read(await readFile(path));
}

/** RGB of pixel (x, y). */
export function pixel(png: PNG, x: number, y: number): [number, number, number] {
  const i = (y * png.width + x) * 4;
  return [png.data[i] ?? -1, png.data[i + 1] ?? -1, png.data[i + 2] ?? -1];
}

/** True when every pixel has the same RGB as (0, 0). */
export function isUniform(png: PNG): boolean {
  const [r, g, b] = pixel(png, 0, 0);
  for (let i = 0; i < png.data.length; i += 4) {
    if (png.data[i] !== r || png.data[i + 1] !== g || png.data[i + 2] !== b) return false;
  }
  return true;
}

/** Saved paths the CLI printed on stdout (one per line). */
export function savedPaths(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '');
}
