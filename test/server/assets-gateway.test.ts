// The v2 asset routes as the gateway serves them: a multi-megabyte image uploaded once with
// POST /api/v2/assets, then used by a job through `asset:<id>` on the instance that runs it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PNG } from 'pngjs';
import { startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ env: { MAX_BODY_BYTES: '1048576' } });
});
after(async () => {
  await stack?.close();
});

/** A noisy RGBA PNG that compresses badly, so it is larger than MAX_BODY_BYTES. */
function noisyPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  let seed = 7;
  for (let i = 0; i < png.data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    png.data[i] = i % 4 === 3 ? 255 : seed >>> 24;
  }
  return PNG.sync.write(png);
}

test('a large input uploaded as an asset runs in a job through asset:<id>', async () => {
  const image = noisyPng(700, 500);
  assert.ok(image.length > 1_048_576, `fixture is ${image.length} bytes`);
  const form = new FormData();
  form.append('content_type', 'image/png');
  form.append('file_path', 'noise.png');
  form.append('file', new Blob([image], { type: 'image/png' }), 'noise.png');
  const upload = await fetch(`${stack.url}/api/v2/assets`, { method: 'POST', body: form });
  assert.equal(upload.status, 201, await upload.clone().text());
  const asset = (await upload.json()) as { id: string; size_bytes: number; hash: string };
  assert.equal(asset.size_bytes, image.length);
  assert.match(asset.hash, /^blake3:[0-9a-f]{64}$/);

  const created = await stack.request('/api/v2/jobs', {
    body: {
      workflow: {
        '1': { class_type: 'LoadImage', inputs: { image: `asset:${asset.id}` } },
        '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
        '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'asset' } },
      },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await waitForStatus(stack, created.body.id, ['succeeded', 'failed'], 30_000);
  const { body: job } = await stack.request(`/api/v2/jobs/${created.body.id}`);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const out = await fetch(job.outputs[0].url);
  const result = PNG.sync.read(Buffer.from(await out.arrayBuffer()));
  assert.equal(result.width, 700);
  assert.equal(result.height, 500);
  const source = PNG.sync.read(image);
  for (const offset of [0, 4 * 12345, 4 * (700 * 500 - 1)]) {
    // ComfyUI truncates float32 to uint8 when it saves, so an inverted value may land one below.
    const expected = 255 - source.data[offset]!;
    const actual = result.data[offset]!;
    assert.ok(
      actual === expected || actual === expected - 1,
      `byte ${offset}: ${actual}, expected ${expected}`,
    );
  }
});
