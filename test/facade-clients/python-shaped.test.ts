// Requests shaped exactly like ComfyUI's own example scripts (Python urllib: form Content-Type with a
// JSON body) and like `curl -d` (form type, or none at all) against the facade over two simulated
// instances: each completes with the right image, nothing answers 4xx/5xx. Also the interrupt
// shapes those scripts send, ComfyUI's answer to an unreadable body, and the v2 API's 415.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import {
  assertPng,
  eventually,
  inverted,
  invertWorkflow,
  rawRequest,
  URLLIB_GET_HEADERS,
  URLLIB_POST_HEADERS,
  WsRecorder,
} from './helpers.ts';

describe('facade: requests shaped like urllib and curl', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2 });
  });
  after(async () => {
    await stack.close();
  });

  /** websockets_api_example.py's get_images(): queue, wait for executing null, history, /view. */
  async function urllibRun(clientId: string, color: number): Promise<void> {
    const ws = new WsRecorder(stack.url, clientId);
    try {
      await ws.opened;
      const queued = await rawRequest(`${stack.url}/prompt`, {
        headers: URLLIB_POST_HEADERS,
        body: JSON.stringify({ prompt: invertWorkflow('urllib', color), client_id: clientId }),
      });
      assert.equal(queued.status, 200, queued.text);
      const promptId = queued.json.prompt_id as string;
      await ws.untilDone(promptId);
      const history = await rawRequest(`${stack.url}/history/${promptId}`, { headers: URLLIB_GET_HEADERS });
      assert.equal(history.status, 200);
      const images = history.json[promptId].outputs['3'].images;
      assert.equal(images.length, 1);
      const q = new URLSearchParams(images[0]).toString();
      const view = await rawRequest(`${stack.url}/view?${q}`, { headers: URLLIB_GET_HEADERS });
      assert.equal(view.status, 200);
      assertPng(view.body, 32, 32, inverted(color));
    } finally {
      ws.close();
    }
  }

  it('runs a prompt POSTed by urllib (form Content-Type, JSON body) and serves its image', async () => {
    await urllibRun('urllib-client-1', 0x336699);
  });

  it('collects SaveImageWebsocket images like websockets_api_example_ws_images.py', async () => {
    const clientId = 'urllib-ws-images';
    const ws = new WsRecorder(stack.url, clientId);
    try {
      await ws.opened;
      const prompt = {
        '1': { class_type: 'EmptyImage', inputs: { width: 40, height: 24, batch_size: 2, color: 0x0000ff } },
        save_image_websocket_node: { class_type: 'SaveImageWebsocket', inputs: { images: ['1', 0] } },
      };
      const queued = await rawRequest(`${stack.url}/prompt`, {
        headers: URLLIB_POST_HEADERS,
        body: JSON.stringify({ prompt, client_id: clientId }),
      });
      assert.equal(queued.status, 200, queued.text);
      const promptId = queued.json.prompt_id as string;
      await ws.untilDone(promptId);
      // The script's loop: binary frames while `executing` names the websocket node, `out[8:]` each.
      const images: Buffer[] = [];
      let current = '';
      for (const frame of ws.frames) {
        if ('binary' in frame) {
          if (current === 'save_image_websocket_node') images.push(frame.binary.subarray(8));
        } else if (frame.type === 'executing' && frame.data.prompt_id === promptId) {
          current = frame.data.node;
        }
      }
      assert.equal(images.length, 2);
      for (const png of images) assertPng(png, 40, 24, [0, 0, 255]);
    } finally {
      ws.close();
    }
  });

  it('runs two urllib clients at once over the pool, each getting its own image', async () => {
    await Promise.all([urllibRun('urllib-a', 0x102030), urllibRun('urllib-b', 0xa0b0c0)]);
  });

  it('runs a prompt sent like `curl -d` with no Content-Type and with the form type', async () => {
    const types: Array<Record<string, string>> = [
      {},
      { 'content-type': 'application/x-www-form-urlencoded' },
    ];
    for (const headers of types) {
      const res = await rawRequest(`${stack.url}/prompt`, {
        headers: { accept: '*/*', 'user-agent': 'curl/8.5.0', ...headers },
        body: JSON.stringify({ prompt: invertWorkflow('curl', 0x00ff00) }),
      });
      assert.equal(res.status, 200, res.text);
      const id = res.json.prompt_id as string;
      const entry = await eventually(async () => {
        const h = await rawRequest(`${stack.url}/history/${id}`);
        return h.json[id];
      });
      assert.equal(entry.status.status_str, 'success');
      const file = entry.outputs['3'].images[0];
      const view = await rawRequest(`${stack.url}/view?${new URLSearchParams(file)}`);
      assertPng(view.body, 32, 32, inverted(0x00ff00));
    }
  });

  it('reads queue, history and interrupt bodies of any Content-Type as JSON', async () => {
    for (const [path, body] of [
      ['/interrupt', ''],
      ['/interrupt', '{}'],
      ['/queue', '{"clear": true}'],
      ['/history', '{"delete": ["nope"]}'],
    ] as const) {
      for (const type of [
        'application/x-www-form-urlencoded',
        'text/plain;charset=UTF-8',
        'application/json',
      ]) {
        const res = await rawRequest(`${stack.url}${path}`, { headers: { 'content-type': type }, body });
        assert.equal(res.status, 200, `${path} ${type} ${JSON.stringify(body)}: ${res.text}`);
      }
    }
    // No body and no type at all (requests.post(url) / curl -X POST).
    assert.equal((await rawRequest(`${stack.url}/interrupt`, { method: 'POST' })).status, 200);
  });

  it('answers an unreadable /prompt body with aiohttp 500 page, like ComfyUI', async () => {
    const res = await rawRequest(`${stack.url}/prompt`, {
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(res.status, 500);
    assert.match(String(res.headers['content-type']), /^text\/plain; charset=utf-8/);
    assert.equal(res.text, '500 Internal Server Error\n\nServer got itself in trouble');
    const array = await rawRequest(`${stack.url}/prompt`, { headers: URLLIB_POST_HEADERS, body: '[1, 2]' });
    assert.equal(array.status, 400);
    assert.equal(array.json.error.type, 'no_prompt');
  });

  it('keeps the v2 API strict: 415 in the v2 envelope naming application/json', async () => {
    const res = await rawRequest(`${stack.url}/api/v2/jobs`, {
      headers: URLLIB_POST_HEADERS,
      body: JSON.stringify({ workflow: invertWorkflow('v2', 1) }),
    });
    assert.equal(res.status, 415);
    assert.equal(res.json.error.code, 'unsupported_media_type');
    assert.match(res.json.error.message, /application\/x-www-form-urlencoded.*application\/json/);
  });
});
