// GET /view through the facade: the first instance that has a file answers and no other is asked
// (nothing logged for an ordinary view), ComfyUI's status for an empty filename, and its preview=
// and channel= conversions (WebP/JPEG re-encoding, RGB without alpha, the alpha alone).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import sharp from 'sharp';
import { eventually, rawRequest } from '../facade-clients/helpers.ts';
import { startTestStack, type TestStack } from '../support/gateway.ts';

describe('facade: GET /view', () => {
  let stack: TestStack;
  const logged: Array<{ level: number; msg: string }> = [];
  let image: Record<string, string>;

  before(async () => {
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    stack = await startTestStack({ instances: 2, logger });
    const res = await rawRequest(`${stack.url}/prompt`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: {
          '1': {
            class_type: 'EmptyImage',
            inputs: { width: 48, height: 32, batch_size: 1, color: 0x3366cc },
          },
          '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'viewed' } },
        },
      }),
    });
    const id = res.json.prompt_id;
    const entry = await eventually(async () => (await rawRequest(`${stack.url}/history/${id}`)).json[id]);
    image = entry.outputs['2'].images[0];
    logged.length = 0;
  });
  after(async () => {
    await stack.close();
  });

  const view = (query: Record<string, string>) =>
    rawRequest(`${stack.url}/view?${new URLSearchParams(query)}`);

  it('serves a file with and without the instance tag, asking no further instance and logging nothing', async () => {
    const tagged = await view(image);
    assert.equal(tagged.status, 200);
    const untagged = await view({ filename: image.filename as string, type: 'output' });
    assert.equal(untagged.status, 200);
    assert.deepEqual(untagged.body, tagged.body);
    assert.equal(String(tagged.headers['content-disposition']), `filename="${image.filename}"`);
    assert.deepEqual(
      logged.filter((l) => l.level >= 40).map((l) => l.msg),
      [],
      'no warning for an ordinary /view',
    );
  });

  it('answers an empty filename 400 and a missing one 404, like ComfyUI', async () => {
    assert.equal((await rawRequest(`${stack.url}/view?filename=&type=output`)).status, 400);
    assert.equal((await rawRequest(`${stack.url}/view?type=output`)).status, 404);
  });

  it('converts with preview=webp;90 and preview=jpeg;50', async () => {
    const webp = await view({ ...image, preview: 'webp;90' });
    assert.equal(webp.status, 200);
    assert.equal(webp.headers['content-type'], 'image/webp');
    const w = await sharp(webp.body).metadata();
    assert.deepEqual([w.format, w.width, w.height], ['webp', 48, 32]);
    const jpeg = await view({ ...image, preview: 'jpeg;50' });
    assert.equal(jpeg.headers['content-type'], 'image/jpeg');
    const j = await sharp(jpeg.body).raw().toBuffer({ resolveWithObject: true });
    assert.equal(j.info.channels, 3);
    assert.ok(Math.abs((j.data[2] as number) - 0xcc) <= 8, 'the pixels survive');
    // Any other format is WebP, as in ComfyUI.
    assert.equal((await view({ ...image, preview: 'png' })).headers['content-type'], 'image/webp');
  });

  it('gives channel=rgb without alpha and channel=a as the alpha alone', async () => {
    const rgb = await sharp((await view({ ...image, channel: 'rgb' })).body)
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.equal(rgb.info.channels, 3);
    assert.deepEqual([...rgb.data.subarray(0, 3)], [0x33, 0x66, 0xcc]);
    const a = await view({ ...image, channel: 'a' });
    assert.equal(a.headers['content-type'], 'image/png');
    const alpha = await sharp(a.body).raw().toBuffer({ resolveWithObject: true });
    assert.equal(alpha.info.channels, 4);
    assert.deepEqual([...alpha.data.subarray(0, 4)], [0, 0, 0, 255]);
  });
});
