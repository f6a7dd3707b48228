// `npm run demo --once` end to end: two simulated instances, the gateway, four kinds of job, and
// real inverted PNGs written to the output folder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { REPO_ROOT } from '../support/shared.ts';

test('the demo runs sync, async, prompt_sync and named-workflow jobs and saves their images', async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'demo-test-'));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['scripts/demo.ts', '--once'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DEMO_OUT_DIR: outDir, LOG_LEVEL: 'error' },
      timeout: 90_000,
    });
    assert.match(stdout, /1\. POST \/api\/v2\/jobs\?wait=30 \(sync\) -> succeeded/);
    assert.match(stdout, /event status: succeeded/);
    assert.match(stdout, /3\. POST \/prompt_sync -> success/);
    assert.match(stdout, /4\. POST \/v1\/workflows\/invert\?wait=30 -> succeeded/);
    assert.match(stdout, /demo finished/);
    const pngs = readdirSync(outDir).filter((f) => f.endsWith('.png'));
    assert.equal(pngs.length, 4);
    // Job 1 inverts a 512x512 image of colour 0x3366cc: every pixel is 0xcc9933, give or take the
    // float32 truncation ComfyUI applies when it saves (255 * (1 - 0x66/255) lands just under 51).
    const first = pngs.find(
      (f) => stdout.includes(f) && /gw_invert/.test(f) && stdout.indexOf(f) < stdout.indexOf('2. POST'),
    );
    assert.ok(first, 'the sync job output is listed before job 2');
    const image = PNG.sync.read(readFileSync(join(outDir, first)));
    assert.equal(image.width, 512);
    assert.equal(image.height, 512);
    const expected = [0xcc, 0x99, 0x33];
    for (const [channel, value] of [...image.data.subarray(0, 3)].entries()) {
      assert.ok(Math.abs(value - expected[channel]!) <= 1, `channel ${channel}: ${value}`);
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
