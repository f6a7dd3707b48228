// Exact bytes of the benchmark's job (EmptyImage 8x8 -> PreviewImage, resubmitted, so served from the
// node-output cache like prompt_cached_resubmit): every WebSocket text frame in order and the HTTP
// bodies. The conformance suite compares parsed JSON; this pins separators, int-vs-float (`1` for a
// cached node's progress, as recorded) and key order. Frames written in one tick share one TCP write,
// which must not change what each frame says.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';

const PROMPT = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 1234 } },
  '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
};

const norm = (s: string) =>
  s.replace(/("timestamp": |"create_time": )\d+/g, '$1T').replace(/_temp_[a-z]{5}_/g, '_temp_X_');

describe('wire bytes of a cached benchmark job', () => {
  let sim: Simulator;
  let url: string;
  let ws: WebSocket;
  const frames: string[] = [];
  before(async () => {
    sim = await startSimulator({ instances: 1 });
    url = sim.instances[0]!.url;
    ws = new WebSocket(`${url.replace('http', 'ws')}/ws?clientId=wb`);
    ws.on('message', (d, binary) => frames.push(binary ? 'binary' : norm(d.toString())));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  });
  after(async () => {
    ws.terminate();
    await sim.close();
  });

  const run = async (id: string) => {
    const from = frames.length;
    const post = await fetch(`${url}/prompt`, {
      method: 'POST',
      body: JSON.stringify({ prompt: PROMPT, client_id: 'wb', prompt_id: id, extra_data: {} }),
    });
    const postText = await post.text();
    const deadline = Date.now() + 5000;
    while (!frames.slice(from).some((f) => f.startsWith('{"type": "executing", "data": {"node": null'))) {
      assert.ok(Date.now() < deadline, `no executing null for ${id}: ${frames.slice(from).join('\n')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const history = await (await fetch(`${url}/history/${id}`)).text();
    return { postText, history: norm(history), frames: frames.slice(from) };
  };

  it('sends the recorded message sequence, byte for byte', async () => {
    await run('wb1');
    const r = await run('wb2');
    assert.equal(r.postText, '{"prompt_id": "wb2", "number": 1, "node_errors": {}}');
    const out = '{"images": [{"filename": "ComfyUI_temp_X_00001_.png", "subfolder": "", "type": "temp"}]}';
    assert.deepEqual(r.frames, [
      '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}',
      '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}',
      '{"type": "execution_start", "data": {"prompt_id": "wb2", "timestamp": T}}',
      '{"type": "execution_cached", "data": {"nodes": ["1", "2"], "prompt_id": "wb2", "timestamp": T}}',
      `{"type": "executed", "data": {"node": "2", "display_node": "2", "output": ${out}, "prompt_id": "wb2"}}`,
      '{"type": "progress_state", "data": {"prompt_id": "wb2", "nodes": {"2": {"value": 1, "max": 1, "state": "finished", "node_id": "2", "prompt_id": "wb2", "display_node_id": "2", "parent_node_id": null, "real_node_id": "2"}}}}',
      '{"type": "execution_success", "data": {"prompt_id": "wb2", "timestamp": T}}',
      '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}}',
      '{"type": "executing", "data": {"node": null, "prompt_id": "wb2"}}',
    ]);
    const prompt =
      '{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1234}}, "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}';
    assert.equal(
      r.history,
      `{"wb2": {"prompt": [1, "wb2", ${prompt}, {"client_id": "wb", "create_time": T}, ["2"]], "outputs": {"2": ${out}}, "status": {"status_str": "success", "completed": true, "messages": [["execution_start", {"prompt_id": "wb2", "timestamp": T}], ["execution_cached", {"nodes": ["1", "2"], "prompt_id": "wb2", "timestamp": T}], ["execution_success", {"prompt_id": "wb2", "timestamp": T}]]}, "meta": {"2": {"node_id": "2", "display_node": "2", "parent_node": null, "real_node_id": "2"}}}}`,
    );
  });
});
