// The value nodes that pipelines read from (GetImageSize, PreviewAny, primitives, StringConcatenate)
// compute real values, and outputs are ordered like CPython orders ComfyUI's set of output nodes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';
import { PyStrHash } from '../../src/simulator/py-set.ts';
import { connect, postJson } from './helpers.ts';

describe('simulator value nodes', () => {
  let sim: Simulator;
  let base: string;
  before(async () => {
    sim = await startSimulator();
    base = sim.instances[0]!.url;
  });
  after(() => sim.close());

  async function run(prompt: Record<string, unknown>, clientId: string) {
    const ws = await connect(base, clientId);
    try {
      const r = await postJson(base, '/prompt', { prompt, client_id: clientId });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const id = (r.body as { prompt_id: string }).prompt_id;
      await ws.waitFor((m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === id);
      const h = (await (await fetch(`${base}/history/${id}`)).json()) as Record<
        string,
        { outputs: Record<string, unknown> }
      >;
      return { ws: [...ws.messages], outputs: h[id]!.outputs };
    } finally {
      ws.close();
    }
  }

  it('previews computed values as text in executed and in history', async () => {
    const { ws, outputs } = await run(
      {
        '1': { class_type: 'EmptyImage', inputs: { width: 33, height: 17, batch_size: 3, color: 0 } },
        '2': { class_type: 'GetImageSize', inputs: { image: ['1', 0] } },
        '3': { class_type: 'PreviewAny', inputs: { source: ['2', 1] } },
        '4': { class_type: 'PrimitiveInt', inputs: { value: 42 } },
        '5': { class_type: 'PreviewAny', inputs: { source: ['4', 0] } },
        '6': { class_type: 'PrimitiveFloat', inputs: { value: 3 } },
        '7': { class_type: 'PreviewAny', inputs: { source: ['6', 0] } },
        '8': { class_type: 'PrimitiveBoolean', inputs: { value: false } },
        '9': { class_type: 'PreviewAny', inputs: { source: ['8', 0] } },
        '10': { class_type: 'PrimitiveStringMultiline', inputs: { value: 'a\nb' } },
        '11': {
          class_type: 'StringConcatenate',
          inputs: { string_a: ['10', 0], string_b: 'c', delimiter: '-' },
        },
        '12': { class_type: 'PreviewAny', inputs: { source: ['11', 0] } },
      },
      'values',
    );
    assert.deepEqual(outputs, {
      '3': { text: ['17'] },
      '5': { text: ['42'] },
      '7': { text: ['3.0'] },
      '9': { text: ['False'] },
      '12': { text: ['a\nb-c'] },
    });
    const executed = ws.filter((m) => 'type' in m && m.type === 'executed') as Array<{
      data: Record<string, unknown>;
    }>;
    assert.deepEqual(executed.find((m) => m.data.node === '12')?.data.output, { text: ['a\nb-c'] });
  });

  it('broadcasts GetImageSize text frames to every socket, like send_progress_text', async () => {
    const other = await connect(base, 'bystander');
    try {
      const { ws } = await run(
        {
          '1': { class_type: 'EmptyImage', inputs: { width: 20, height: 10, batch_size: 2, color: 5 } },
          '2': { class_type: 'GetImageSize', inputs: { image: ['1', 0] } },
          '3': { class_type: 'PreviewAny', inputs: { source: ['2', 2] } },
        },
        'sizer',
      );
      const expected = Buffer.concat([
        Buffer.from([0, 0, 0, 3, 0, 0, 0, 1]),
        Buffer.from('2'),
        Buffer.from('width: 20, height: 10\n batch size: 2'),
      ]);
      const frames = (list: typeof ws) =>
        list.filter((m): m is { binary: Buffer } => 'binary' in m).map((m) => m.binary.toString('hex'));
      assert.deepEqual(frames(ws), [expected.toString('hex')]);
      // The final status broadcast (queue empty again) reaches the bystander after the frame.
      const greeting = other.messages[0];
      await other.waitFor(
        (m) =>
          m !== greeting && m.type === 'status' && JSON.stringify(m.data).includes('"queue_remaining":0'),
      );
      assert.deepEqual(frames(other.messages), [expected.toString('hex')]);
      // The frame comes while node 2 runs: after its `executing`, before its finished progress_state.
      const i = ws.findIndex((m) => 'binary' in m);
      assert.equal((ws[i - 1] as { type: string; data: { node: string } }).data.node, '2');
      assert.equal((ws[i + 1] as { type: string }).type, 'progress_state');
    } finally {
      other.close();
    }
  });

  it('orders output nodes as CPython 3.11 iterates a set of strings', () => {
    // Reference values printed by python3.11 (hash() and list(set([...]))) under these PYTHONHASHSEEDs.
    const zero = new PyStrHash(0);
    assert.equal(BigInt.asIntN(64, zero.hash('3')), -6250727467951016618n);
    assert.deepEqual(zero.setOrder(['3', '15', '4', '11', '7', '9', '14']), [
      '7',
      '11',
      '9',
      '14',
      '4',
      '15',
      '3',
    ]);
    const seeded = new PyStrHash(4471);
    assert.deepEqual(seeded.setOrder(['3', '4', '7', '9', '11', '14', '15']), [
      '3',
      '15',
      '4',
      '11',
      '7',
      '9',
      '14',
    ]);
    assert.deepEqual(seeded.setOrder(['4', '6']), ['6', '4']);
  });
});
