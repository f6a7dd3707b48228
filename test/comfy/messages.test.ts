// Parsing of ComfyUI's WebSocket messages against the recorded v0.8.0 transcripts.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  decodeBinaryFrame,
  encodePreviewFrame,
  isBlockedExecution,
  parseTextMessage,
} from '../../src/comfy/index.ts';
import { readJson, TRANSCRIPTS_DIR } from '../support/shared.ts';

interface Transcript {
  events: Array<{ kind: string; message?: { type: string; data: unknown } }>;
}

const transcripts = readdirSync(TRANSCRIPTS_DIR)
  .filter((f) => f.endsWith('.json') && f !== 'object_info.json')
  .map((f) => ({ name: f, data: readJson<Transcript>(join(TRANSCRIPTS_DIR, f)) }));

describe('parseTextMessage', () => {
  it('parses every recorded server text frame into its typed message', () => {
    const seen = new Set<string>();
    let count = 0;
    for (const { name, data } of transcripts) {
      for (const event of data.events) {
        if (event.kind !== 'ws_text' || !event.message) continue;
        // The recorder parsed Python's json.dumps output; re-serialise it the same way the server did.
        const parsed = parseTextMessage(JSON.stringify(event.message));
        assert.ok(parsed, `${name}: ${event.message.type} was rejected`);
        assert.equal(parsed.type, event.message.type, name);
        assert.deepEqual(parsed.data, event.message.data, name);
        seen.add(parsed.type);
        count++;
      }
    }
    assert.ok(count > 100, `only ${count} frames`);
    for (const type of [
      'status',
      'feature_flags',
      'execution_start',
      'execution_cached',
      'executing',
      'progress',
      'progress_state',
      'executed',
      'execution_success',
      'execution_error',
      'execution_interrupted',
    ]) {
      assert.ok(seen.has(type), `no recorded ${type}`);
    }
  });

  it('keeps the greeting sid and the executing-null end marker', () => {
    const greeting = parseTextMessage(
      '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "gw-1"}}',
    );
    assert.deepEqual(greeting, {
      type: 'status',
      data: { status: { exec_info: { queue_remaining: 0 } }, sid: 'gw-1' },
    });
    const end = parseTextMessage('{"type": "executing", "data": {"node": null, "prompt_id": "p"}}');
    assert.deepEqual(end, { type: 'executing', data: { node: null, prompt_id: 'p' } });
  });

  it('returns custom messages for unknown types and rejects malformed frames', () => {
    assert.deepEqual(parseTextMessage('{"type": "my.node", "data": {"x": 1}}'), {
      type: 'custom',
      name: 'my.node',
      data: { x: 1 },
    });
    assert.equal(parseTextMessage('not json'), undefined);
    assert.equal(parseTextMessage('[1,2]'), undefined);
    assert.equal(parseTextMessage('{"data": {}}'), undefined);
    assert.equal(parseTextMessage('{"type": "executed", "data": {"node": "3"}}'), undefined);
    assert.equal(parseTextMessage('{"type": "status", "data": {"status": {}}}'), undefined);
    assert.equal(parseTextMessage('{"type": "progress", "data": {"value": "1", "max": 2}}'), undefined);
  });

  it('recognises the non-terminal ExecutionBlocked error', () => {
    const blocked = parseTextMessage(
      JSON.stringify({
        type: 'execution_error',
        data: {
          prompt_id: 'p',
          node_id: '4',
          node_type: 'X',
          exception_type: 'ExecutionBlocked',
          exception_message: 'm',
        },
      }),
    );
    assert.ok(blocked && blocked.type === 'execution_error');
    assert.equal(isBlockedExecution(blocked.data), true);
    assert.deepEqual(blocked.data.traceback, []);
    const recorded = transcripts
      .flatMap((t) => t.data.events)
      .find((e) => e.message?.type === 'execution_error');
    assert.ok(recorded?.message);
    const real = parseTextMessage(JSON.stringify(recorded.message));
    assert.ok(real && real.type === 'execution_error');
    assert.equal(isBlockedExecution(real.data), false);
    assert.ok(real.data.traceback.length > 0);
  });
});

describe('decodeBinaryFrame', () => {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

  it('decodes type 1 frames with the recorded header', () => {
    const frame = encodePreviewFrame({ mime: 'image/png', data: png }, false);
    assert.equal(frame.subarray(0, 8).toString('hex'), '0000000100000002');
    const decoded = decodeBinaryFrame(frame);
    assert.equal(decoded.kind, 'preview');
    assert.ok(decoded.kind === 'preview');
    assert.equal(decoded.frame.mime, 'image/png');
    assert.deepEqual(decoded.frame.data, png);
    assert.equal(decoded.frame.promptId, undefined);
    const jpeg = Buffer.concat([Buffer.from('0000000100000001', 'hex'), Buffer.from([0xff, 0xd8])]);
    const j = decodeBinaryFrame(jpeg);
    assert.ok(j.kind === 'preview');
    assert.equal(j.frame.mime, 'image/jpeg');
  });

  it('decodes type 4 frames with metadata exactly as recorded', () => {
    // save_image_websocket_metadata.json: 337-byte frame, header 00000004000000a5, 165 bytes of metadata.
    const meta = Buffer.from(
      JSON.stringify({
        node_id: '2',
        prompt_id: 'f9a63ea2-10c7-4bb0-81ab-137f25036750',
        display_node_id: '2',
        parent_node_id: null,
        real_node_id: '2',
        image_type: 'image/png',
      })
        .replace(/":/g, '": ')
        .replace(/,"/g, ', "'),
    );
    assert.equal(meta.length, 165);
    const image = Buffer.alloc(164, 7);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(4, 0);
    head.writeUInt32BE(meta.length, 4);
    const frame = Buffer.concat([head, meta, image]);
    assert.equal(frame.length, 337);
    assert.equal(frame.subarray(0, 8).toString('hex'), '00000004000000a5');
    const decoded = decodeBinaryFrame(frame);
    assert.ok(decoded.kind === 'preview');
    assert.equal(decoded.frame.promptId, 'f9a63ea2-10c7-4bb0-81ab-137f25036750');
    assert.equal(decoded.frame.nodeId, '2');
    assert.equal(decoded.frame.mime, 'image/png');
    assert.deepEqual(decoded.frame.data, image);
  });

  it('decodes both TEXT layouts', () => {
    const legacy = Buffer.concat([Buffer.from([0, 0, 0, 3, 0, 0, 0, 2]), Buffer.from('12hello')]);
    const t = decodeBinaryFrame(legacy);
    assert.deepEqual(t, { kind: 'text', frame: { nodeId: '12', text: 'hello' } });
    const withPrompt = Buffer.concat([
      Buffer.from([0, 0, 0, 3, 0, 0, 0, 1]),
      Buffer.from('p'),
      Buffer.from([0, 0, 0, 1]),
      Buffer.from('5ok'),
    ]);
    assert.deepEqual(decodeBinaryFrame(withPrompt, true), {
      kind: 'text',
      frame: { promptId: 'p', nodeId: '5', text: 'ok' },
    });
  });

  it('rejects truncated frames with a RangeError and passes unknown types through', () => {
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0])), RangeError);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 1])), RangeError);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 4, 0, 0, 1, 0, 123])), RangeError);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 4, 0, 0, 0, 1, 0x7b])), RangeError);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 3, 0, 0, 0, 9, 0x31])), RangeError);
    const unknown = decodeBinaryFrame(Buffer.from([0, 0, 0, 9, 1, 2]));
    assert.deepEqual(unknown, { kind: 'unknown', eventType: 9, data: Buffer.from([1, 2]) });
  });
});
