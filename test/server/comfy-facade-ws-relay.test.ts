// The facade's socket against recordings of a real ComfyUI v0.8.0: the recorded prompts are sent
// through the gateway (one simulated instance behind it), and the frames the client's socket gets
// must follow the recording frame for frame — `status`, `execution_start`, `execution_cached` with
// its nodes, `progress_state`, `executing`, `progress`, binary frames in their place, `executed`,
// the terminal message and `executing` null. Also: a client reconnecting with its clientId while
// its prompt runs is told the executing node, as ComfyUI does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chainWorkflow, rawRequest, WsRecorder } from '../facade-clients/helpers.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

const transcripts = new URL('../fixtures/comfyui-transcripts/', import.meta.url);

/** A frame reduced to what must match: type and the fields that carry ComfyUI's semantics. */
function signature(
  frame: { type?: string; data?: Json } | { binary: Buffer | { first8_hex: string } },
): string {
  if ('binary' in frame) {
    const head = Buffer.isBuffer(frame.binary)
      ? frame.binary.subarray(0, 4).toString('hex')
      : frame.binary.first8_hex.slice(0, 8);
    return `binary:${Number.parseInt(head, 16)}`;
  }
  const { type, data } = frame as { type: string; data: Json };
  switch (type) {
    case 'status':
      return `status:${data.status.exec_info.queue_remaining}`;
    case 'executing':
      return `executing:${data.node}`;
    case 'execution_cached':
      return `execution_cached:${[...data.nodes].sort().join(',')}`;
    case 'progress':
      return `progress:${data.node}:${data.value}/${data.max}`;
    case 'progress_state':
      return `progress_state:${Object.entries(data.nodes as Record<string, Json>)
        .map(([id, n]) => `${id}=${n.state}:${n.value}/${n.max}`)
        .join(',')}`;
    case 'executed':
      return `executed:${data.node}:${Object.keys(data.output).join(',')}`;
    default:
      return type;
  }
}

/** Replays a recording's prompts through the facade; returns [recorded, relayed] signatures. */
async function replay(stack: TestStack, name: string, clientId: string): Promise<[string[], string[]]> {
  const scenario = JSON.parse(readFileSync(new URL(`${name}.json`, transcripts), 'utf8'));
  const recorded: string[] = [];
  for (const e of scenario.events) {
    if (e.ws !== 'main') continue;
    if (e.kind === 'ws_text') recorded.push(signature(e.message));
    if (e.kind === 'ws_binary') recorded.push(signature({ binary: e.binary }));
  }
  const ws = new WsRecorder(stack.url, clientId);
  try {
    await ws.opened;
    for (const e of scenario.events) {
      if (e.kind === 'ws_send' && e.ws === 'main') {
        ws.ws.send(JSON.stringify(e.message));
        // ComfyUI answers feature_flags; the prompt goes out once the answer is in.
        await ws.until((m) => m.some((x) => x.type === 'feature_flags'));
      }
      if (e.kind !== 'http' || e.request.method !== 'POST' || !e.request.path.endsWith('/prompt')) continue;
      const body = { ...e.request.body_json, client_id: clientId };
      const res = await rawRequest(`${stack.url}/prompt`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200, res.text);
      await ws.untilDone(res.json.prompt_id);
    }
    return [recorded, ws.frames.map((f) => signature(f as never))];
  } finally {
    ws.close();
  }
}

describe('facade socket follows the recorded ComfyUI frames', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 1 });
  });
  after(async () => {
    await stack.close();
  });

  for (const name of [
    'prompt_success_invert',
    'prompt_cached_resubmit',
    'save_image_websocket_legacy',
    'save_image_websocket_metadata',
  ]) {
    it(`relays ${name} frame for frame`, async () => {
      const [recorded, relayed] = await replay(stack, name, `relay-${name}`);
      assert.deepEqual(relayed, recorded);
    });
  }
});

describe('facade socket: prompts without a client id', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 1 });
  });
  after(async () => {
    await stack.close();
  });

  it('broadcasts progress_state of a prompt without client_id, and nothing else of it (prompt_no_client_id)', async () => {
    const scenario = JSON.parse(readFileSync(new URL('prompt_no_client_id.json', transcripts), 'utf8'));
    const recorded = scenario.events
      .filter((e: Json) => e.ws === 'observer' && e.kind === 'ws_text')
      .map((e: Json) => signature(e.message));
    const post = scenario.events.find((e: Json) => e.kind === 'http' && e.request.method === 'POST');
    const observer = new WsRecorder(stack.url, 'observer');
    try {
      await observer.opened;
      const res = await rawRequest(`${stack.url}/prompt`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(post.request.body_json),
      });
      const id = res.json.prompt_id;
      await observer.until((m) => m.length === recorded.length && m.at(-1)?.type === 'status');
      assert.deepEqual(
        observer.frames.map((f) => signature(f as never)),
        recorded,
      );
      assert.equal((await rawRequest(`${stack.url}/history/${id}`)).json[id].status.status_str, 'success');
    } finally {
      observer.close();
    }
  });
});

describe('facade socket: reconnecting client', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 1, nodeDelayMs: 150 });
  });
  after(async () => {
    await stack.close();
  });

  it('a client that reconnects with its clientId while its prompt runs gets the executing node', async () => {
    const first = new WsRecorder(stack.url, 'reconnect-me');
    await first.opened;
    const res = await rawRequest(`${stack.url}/prompt`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: chainWorkflow('reconnect', 7, 6), client_id: 'reconnect-me' }),
    });
    const id = res.json.prompt_id;
    await first.until((m) => m.some((x) => x.type === 'executing' && x.data.node === '11'));
    first.close();
    const second = new WsRecorder(stack.url, 'reconnect-me');
    try {
      await second.until((m) => m.length >= 2);
      const [status, executing] = second.messages;
      assert.equal(status?.type, 'status');
      assert.equal(executing?.type, 'executing');
      assert.deepEqual(Object.keys(executing?.data ?? {}), ['node'], 'ComfyUI sends only the node');
      assert.match(String(executing?.data.node), /^1\d$/);
      await second.untilDone(id);
      const other = new WsRecorder(stack.url, 'someone-else');
      await other.until((m) => m.length >= 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(other.messages.filter((m) => m.type === 'executing').length, 0);
      other.close();
    } finally {
      second.close();
    }
  });
});
