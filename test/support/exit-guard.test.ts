// The test run's exit guard (test/support/exit-guard.ts, loaded by `npm run test:unit`): every
// verdict of fast files reaches the runner, a file that leaks a handle fails naming it, and a file
// that ends cleanly exits at once.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from './shared.ts';

const GUARD = join(REPO_ROOT, 'test', 'support', 'exit-guard.ts');

/** `node --test` as npm's test:unit runs it, over `files` in `dir`; resolves with its exit code and output. */
function runTests(dir: string, files: string[], graceMs: number) {
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_EXIT_GRACE_MS: String(graceMs) };
  // This file runs as a test runner's child: without this the nested runner would report as one.
  delete env.NODE_TEST_CONTEXT;
  return new Promise<{ code: number; output: string; ms: number }>((resolve) => {
    const started = Date.now();
    execFile(
      process.execPath,
      ['--test', '--import', GUARD, '--test-concurrency=2', ...files],
      { cwd: dir, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, output: stdout + stderr, ms: Date.now() - started });
      },
    );
  });
}

describe('the exit guard of the test run', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'exit-guard-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lets every verdict of many fast files reach the runner', async () => {
    const files = Array.from({ length: 6 }, (_, f) => `fast${f}.test.mjs`);
    for (const [f, name] of files.entries()) {
      const tests = Array.from(
        { length: 80 },
        (_, t) => `test('file ${f} test ${t} with a longish name', () => {});`,
      );
      await writeFile(join(dir, name), `import { test } from 'node:test';\n${tests.join('\n')}\n`);
    }
    const { code, output } = await runTests(dir, files, 10_000);
    assert.equal(code, 0, output);
    assert.match(output, /^ℹ tests 480$/m);
    assert.match(output, /^ℹ pass 480$/m);
  });

  it('fails a file whose process outlives its last test, naming what keeps it alive', async () => {
    await writeFile(
      join(dir, 'leak.test.mjs'),
      "import { test } from 'node:test';\ntest('leaks a timer', () => { setInterval(() => {}, 1000); });\n",
    );
    await writeFile(
      join(dir, 'clean.test.mjs'),
      "import { test } from 'node:test';\ntest('ends', () => {});\n",
    );
    const { code, output } = await runTests(dir, ['leak.test.mjs', 'clean.test.mjs'], 300);
    assert.equal(code, 1, output);
    assert.match(output, /still alive 300 ms after its last test; active: \[.*"Timeout".*\]/);
    assert.match(output, /✖ leak\.test\.mjs/);
    assert.match(output, /^ℹ pass 2$/m);
  });

  it('lets a file that ends cleanly exit at once, not after the grace time', async () => {
    const { code, output, ms } = await runTests(dir, ['clean.test.mjs'], 30_000);
    assert.equal(code, 0, output);
    assert.ok(ms < 15_000, `took ${ms} ms`);
  });
});
