// The convert command end to end: bundled definitions, a live /object_info over loopback, errors.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, WORKFLOW_PAIRS_DIR } from '../support/shared.ts';
import { comparePrompts } from './compare.ts';

const run = promisify(execFile);
const MAIN = join(REPO_ROOT, 'src/cli/main.ts');
const pair = (name: string, file: string) => join(WORKFLOW_PAIRS_DIR, name, file);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, 'convert', ...args], { timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('comfy-gateway convert', () => {
  let dir: string;
  const server = createServer(async (req, res) => {
    if (req.url === '/object_info') {
      res.setHeader('content-type', 'application/json');
      res.end(await readFile(join(REPO_ROOT, 'src/simulator/data/object_info.json')));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wf-cli-'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the prompt using the bundled definitions and warns on stderr', async () => {
    const r = await cli([pair('core_inpaint', 'ui.json')]);
    assert.equal(r.code, 0);
    const api = JSON.parse(await readFile(pair('core_inpaint', 'api.json'), 'utf8'));
    const diffs = comparePrompts(JSON.parse(r.stdout), api, []);
    assert.deepEqual(diffs, ['26.grow_mask_by: extra input 6']);
    assert.match(r.stderr, /warning \[widget_value_missing\] node 26/);
  });

  it('fetches /object_info from --server and writes -o', async () => {
    const port = (server.address() as AddressInfo).port;
    const out = join(dir, 'api.json');
    const r = await cli([pair('core_lcm', 'ui.json'), '--server', `http://127.0.0.1:${port}`, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    const api = JSON.parse(await readFile(pair('core_lcm', 'api.json'), 'utf8'));
    assert.deepEqual(comparePrompts(JSON.parse(await readFile(out, 'utf8')), api), []);
  });

  it('exits 1 naming the unresolved custom nodes, and 2 on usage errors', async () => {
    const r = await cli([pair('custom_rgthree_context_seed', 'ui.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /node_widgets_unresolved\] node 351 \(Seed \(rgthree\)/);
    assert.equal(r.stdout, '');
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"hello": 1}');
    const r2 = await cli([bad]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /neither a UI workflow/);
    const r3 = await cli([pair('core_lcm', 'ui.json'), '--server', 'not a url']);
    assert.equal(r3.code, 2);
  });
});
