// Per-client ordering over a pool: like one ComfyUI, prompts of one client_id run one at a time in
// submission order while other clients' prompts use the other instances; the
// COMFY_FACADE_PARALLEL_PER_CLIENT setting lets one client's prompts run at once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { invertWorkflow, rawRequest, WsRecorder } from '../facade-clients/helpers.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

async function submit(stack: TestStack, clientId: string, color: number): Promise<string> {
  const res = await rawRequest(`${stack.url}/prompt`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: invertWorkflow(`ord_${clientId}`, color), client_id: clientId }),
  });
  assert.equal(res.status, 200, res.text);
  return res.json.prompt_id;
}

/** Index in the socket's messages of the first `type` message of `promptId`. */
function at(ws: WsRecorder, type: string, promptId: string): number {
  const i = ws.messages.findIndex((m) => m.type === type && m.data?.prompt_id === promptId);
  assert.ok(i >= 0, `no ${type} for ${promptId}`);
  return i;
}

describe('facade: prompts of one client id run in submission order', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2, nodeDelayMs: 60 });
  });
  after(async () => {
    await stack.close();
  });

  it('runs one client’s prompts one after another while another client uses the other instance', async () => {
    const mine = new WsRecorder(stack.url, 'ordered');
    const other = new WsRecorder(stack.url, 'other');
    try {
      await Promise.all([mine.opened, other.opened]);
      const ids = [];
      for (const color of [0x010101, 0x020202, 0x030303]) ids.push(await submit(stack, 'ordered', color));
      const theirs = await submit(stack, 'other', 0x040404);
      const queue = (await rawRequest(`${stack.url}/queue`)).json;
      const pending = queue.queue_pending.map((q: Json) => q[1]);
      assert.ok(pending.includes(ids[2]), 'a prompt waiting behind its client’s earlier one is pending');
      await mine.untilDone(ids[2] as string);
      await other.untilDone(theirs);
      for (let i = 1; i < ids.length; i++) {
        assert.ok(
          at(mine, 'execution_start', ids[i] as string) > at(mine, 'execution_success', ids[i - 1] as string),
          `prompt ${i} started only after prompt ${i - 1} succeeded`,
        );
      }
      // The other client did not wait for the whole series: it ran beside it.
      const otherDone = other.messages.findIndex((m) => m.type === 'execution_success');
      assert.ok(otherDone >= 0);
      const job = (await rawRequest(`${stack.url}/api/v2/jobs/${theirs}`)).json;
      const last = (await rawRequest(`${stack.url}/api/v2/jobs/${ids[2]}`)).json;
      assert.ok(
        Date.parse(job.started_at) < Date.parse(last.started_at),
        'the other client did not queue behind',
      );
    } finally {
      mine.close();
      other.close();
    }
  });
});

describe('facade: deleting a prompt that waits behind its client’s earlier one', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({ instances: 2, nodeDelayMs: 60 });
  });
  after(async () => {
    await stack.close();
  });

  it('removes it from the queue for good while the series goes on', async () => {
    const ws = new WsRecorder(stack.url, 'deleter');
    try {
      await ws.opened;
      const a = await submit(stack, 'deleter', 0x0a0a0a);
      const b = await submit(stack, 'deleter', 0x0b0b0b);
      const c = await submit(stack, 'deleter', 0x0c0c0c);
      const del = await rawRequest(`${stack.url}/queue`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ delete: [b] }),
      });
      assert.equal(del.status, 200);
      await ws.untilDone(c);
      assert.ok(at(ws, 'execution_start', c) > at(ws, 'execution_success', a), 'c waited for a');
      assert.ok(!ws.messages.some((m) => m.data?.prompt_id === b), 'the deleted prompt never ran');
      assert.deepEqual((await rawRequest(`${stack.url}/history/${b}`)).json, {});
    } finally {
      ws.close();
    }
  });
});

describe('facade: COMFY_FACADE_PARALLEL_PER_CLIENT=true', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startTestStack({
      instances: 2,
      nodeDelayMs: 100,
      env: { COMFY_FACADE_PARALLEL_PER_CLIENT: 'true' },
    });
  });
  after(async () => {
    await stack.close();
  });

  it('runs two prompts of one client at the same time', async () => {
    const ws = new WsRecorder(stack.url, 'parallel');
    try {
      await ws.opened;
      const a = await submit(stack, 'parallel', 0x050505);
      const b = await submit(stack, 'parallel', 0x060606);
      await ws.untilDone(a);
      await ws.untilDone(b);
      assert.ok(
        at(ws, 'execution_start', b) < at(ws, 'execution_success', a),
        'the second started before the first ended',
      );
    } finally {
      ws.close();
    }
  });
});
