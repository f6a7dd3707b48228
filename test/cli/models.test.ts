// `comfy-gateway models download|list` against a real gateway: the download follows the task to
// its end and prints the file and its hash; refusals come back as one line and exit code 1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { contentSha256, type ModelServer, startModelServer } from '../support/model-server.ts';
import { REPO_ROOT } from '../support/shared.ts';

const exec = promisify(execFile);
let files: ModelServer;
let stack: TestStack;
let modelsDir: string;

before(async () => {
  files = await startModelServer(2 * 1024 * 1024 + 3);
  modelsDir = await mkdtemp(join(tmpdir(), 'gw-cli-models-'));
  stack = await startTestStack({ env: { MODELS_DIR: modelsDir, ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1' } });
});
after(async () => {
  await stack?.close();
  await files?.close();
  await rm(modelsDir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(
      join(REPO_ROOT, 'node_modules', '.bin', 'node'),
      ['src/cli/main.ts', 'models', ...args],
      { cwd: REPO_ROOT, timeout: 60_000, env: { PATH: process.env.PATH } },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('models download follows the task to its end and models list shows the file', async () => {
  const url = `${files.url}/cli/tiny.safetensors`;
  const done = await cli(['download', url, '--dir', 'loras', '--gateway', stack.url]);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stdout.trim(), `loras/tiny.safetensors sha256=${contentSha256(files.size)}`);
  assert.match(done.stderr, /completed/);
  const listed = await cli(['list', '--gateway', stack.url]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^loras\/$/m);
  assert.match(listed.stdout, /^ {2}tiny\.safetensors {2}2\.0 MiB/m);
  assert.match(listed.stdout, /loras\/tiny\.safetensors: completed/);
});

test('a refused download is one line on stderr and exit code 1', async () => {
  const bad = await cli([
    'download',
    `${files.url}/x.safetensors`,
    '--dir',
    'loras',
    '--filename',
    '../escape.safetensors',
    '--gateway',
    stack.url,
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^invalid_filename: /);
  const usage = await cli([
    'download',
    'http://x/y.safetensors',
    '--dir',
    'loras',
    '--gateway',
    'ftp://nope',
  ]);
  assert.equal(usage.code, 2);
});
