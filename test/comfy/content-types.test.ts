// One extension → content type table: the SDK's uploads, job output links and io's delivery agree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentTypeFor } from '../../src/comfy/index.ts';
import { mimeFromName } from '../../src/io/index.ts';
import { contentTypeOf } from '../../src/jobs/index.ts';

test('the three call sites answer from one table, unknown and extension-less names as octet-stream', () => {
  const cases: Array<[string, string]> = [
    ['ComfyUI_00001_.png', 'image/png'],
    ['clip.MP4', 'video/mp4'],
    ['voice.opus', 'audio/ogg'],
    ['mesh.glb', 'model/gltf-binary'],
    ['caption.txt', 'text/plain'],
    ['model.safetensors', 'application/octet-stream'],
    ['latent', 'application/octet-stream'],
    ['dir.png/file', 'application/octet-stream'],
  ];
  for (const [name, type] of cases) {
    assert.equal(contentTypeFor(name), type, name);
    assert.equal(contentTypeOf(name), type, name);
    assert.equal(mimeFromName(name), type, name);
  }
});
