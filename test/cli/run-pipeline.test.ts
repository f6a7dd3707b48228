// `comfy-gateway run <pipeline.yaml> --gateway` as a real process against a real gateway in front
// of the simulator: inputs uploaded as assets, --set inputs, a line per step and iteration, file
// outputs on disk, and a failed run's context on stderr with exit code 1.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { REPO_ROOT } from '../support/shared.ts';
import { readPng, runCli, savedPaths, tempDir } from './run-support.ts';

const GROW = join(REPO_ROOT, 'workflows/grow-until-wide.pipeline.yaml');
const EXAMPLE_PNG = join(REPO_ROOT, 'examples/example.png');

describe('run <pipeline> --gateway', () => {
  let stack: TestStack;
  let out: { path: string; remove: () => Promise<void> };

  before(async () => {
    stack = await startTestStack({ instances: 2 });
    out = await tempDir('run-pipeline-');
  });
  after(async () => {
    await stack.close();
    await out.remove();
  });

  it('runs the pipeline, prints a line per step and iteration, and saves its file outputs', async () => {
    const dir = join(out.path, 'grow');
    const source = await readPng(EXAMPLE_PNG);
    const r = await runCli([
      'run',
      GROW,
      '--gateway',
      stack.url,
      '--input',
      `image=${EXAMPLE_PNG}`,
      '--set',
      `min_width=${source.width * 3}`,
      '--out',
      dir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /step grow, iteration 1: running \(job [0-9a-f-]{36}\)/);
    assert.match(r.stderr, /step grow, iteration 2: succeeded/);
    assert.doesNotMatch(r.stderr, /iteration 3/);
    assert.match(r.stderr, /step finish: succeeded/);
    assert.match(r.stderr, /run [0-9a-f-]{36} succeeded/);
    assert.match(r.stderr, /step grow: succeeded, 2 iteration\(s\) \(stopped: condition\)/);
    assert.match(r.stderr, new RegExp(`output width: ${source.width * 4}`));
    const [path, ...rest] = savedPaths(r.stdout);
    assert.deepEqual(rest, []);
    assert.equal(path, join(dir, 'image.png'));
    const png = await readPng(path ?? '');
    assert.equal(png.width, source.width * 4);
  });

  it('a failed run exits 1 with the step, iteration and the job error', async () => {
    const file = join(out.path, 'bad.pipeline.yaml');
    await writeFile(
      file,
      `steps:
  - id: shrink
    workflow: scale2x
    parameters: { image: does-not-exist.png }
`,
    );
    const r = await runCli(['run', file, '--gateway', stack.url, '--out', join(out.path, 'bad')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /error: run [0-9a-f-]{36} failed\nstep_failed: step shrink, iteration 1: /);
    assert.equal(savedPaths(r.stdout).length, 0);
  });

  it('a pipeline without --gateway is a usage error (exit 2)', async () => {
    const r = await runCli(['run', GROW, '--input', `image=${EXAMPLE_PNG}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is a pipeline: it runs on a gateway, add --gateway URL/);
  });
});
