// Files uploaded through the facade keep the name the client gave them on the instance that runs the
// prompt: the PNG metadata of an output made from an upload (its `prompt` text chunk, which ComfyUI
// writes from the prompt it executed) names the uploaded file as the client did, as on one ComfyUI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { eventually, rawRequest } from '../facade-clients/helpers.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

/** The tEXt chunks of a PNG, keyword → text. */
function pngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 8;
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    if (type === 'tEXt') {
      const data = png.subarray(offset + 8, offset + 8 + length);
      const zero = data.indexOf(0);
      out[data.toString('latin1', 0, zero)] = data.toString('latin1', zero + 1);
    }
    offset += 12 + length;
  }
  return out;
}

describe('facade: uploaded file names', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2 });
  });
  after(async () => {
    await stack.close();
  });

  async function upload(name: string, subfolder: string, png: Buffer): Promise<Json> {
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), name);
    form.append('subfolder', subfolder);
    const res = await fetch(`${stack.url}/upload/image`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    return res.json();
  }

  it('an output made from an uploaded image names it as the client uploaded it', async () => {
    const src = new PNG({ width: 6, height: 4 });
    for (let i = 0; i < src.data.length; i += 4) src.data.set([250, 20, 90, 255], i);
    const answer = await upload('my photo.png', 'album', PNG.sync.write(src));
    assert.deepEqual(answer, { name: 'my photo.png', subfolder: 'album', type: 'input' });
    for (const round of [1, 2]) {
      const res = await rawRequest(`${stack.url}/prompt`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          prompt: {
            '1': { class_type: 'LoadImage', inputs: { image: 'album/my photo.png' } },
            '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: `named_${round}` } },
          },
        }),
      });
      assert.equal(res.status, 200, res.text);
      const id = res.json.prompt_id;
      const entry = await eventually(async () => (await rawRequest(`${stack.url}/history/${id}`)).json[id]);
      assert.equal(entry.status.status_str, 'success');
      const file = entry.outputs['2'].images[0];
      const view = await rawRequest(`${stack.url}/view?${new URLSearchParams(file)}`);
      const text = pngText(view.body);
      assert.ok(text.prompt, 'the output carries the prompt');
      assert.equal(JSON.parse(text.prompt)['1'].inputs.image, 'album/my photo.png');
      assert.deepEqual([...PNG.sync.read(view.body).data.subarray(0, 3)], [250, 20, 90]);
    }
  });
});
