// POST /interrupt over a pool: ComfyUI's global interrupt (empty body, `{}`, any Content-Type) is
// accepted, and stops only the caller's own running prompts — those of the client id it names, else
// those submitted with the same API key — never another user's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, invertWorkflow, rawRequest } from '../facade-clients/helpers.ts';
import { type Json, startTestStack, type TestStack } from '../support/gateway.ts';

describe('facade: global interrupt over a pool', () => {
  let stack: TestStack;
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });

  before(async () => {
    stack = await startTestStack({
      instances: 2,
      nodeDelayMs: 400,
      env: { API_KEYS: 'key-one,key-two', MAX_JOBS_PER_INSTANCE: '2' },
    });
  });
  after(async () => {
    await stack.close();
  });

  async function submit(key: string, clientId: string, color: number): Promise<string> {
    const res = await rawRequest(`${stack.url}/prompt`, {
      headers: { ...auth(key), 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: invertWorkflow(`int_${clientId}`, color), client_id: clientId }),
    });
    assert.equal(res.status, 200, res.text);
    return res.json.prompt_id;
  }

  async function untilRunning(key: string, ids: string[]): Promise<void> {
    await eventually(async () => {
      const q = await rawRequest(`${stack.url}/queue`, { headers: auth(key) });
      const running = new Set(q.json.queue_running.map((item: Json) => item[1]));
      return ids.every((id) => running.has(id)) ? true : undefined;
    });
  }

  async function outcome(key: string, id: string): Promise<string> {
    return eventually(async () => {
      const h = await rawRequest(`${stack.url}/history/${id}`, { headers: auth(key) });
      const entry = h.json[id];
      if (!entry) return undefined;
      const interrupted = entry.status.messages.some((m: Json) => m[0] === 'execution_interrupted');
      return interrupted ? 'interrupted' : entry.status.status_str;
    });
  }

  it('an empty-body interrupt stops the running prompts of the same API key only', async () => {
    const mine = await submit('key-one', 'client-1', 0x111111);
    const theirs = await submit('key-two', 'client-2', 0x222222);
    await untilRunning('key-one', [mine, theirs]);
    const res = await rawRequest(`${stack.url}/interrupt`, {
      headers: { ...auth('key-one'), 'content-type': 'application/json' },
      body: '',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(await outcome('key-one', mine), 'interrupted');
    assert.equal(await outcome('key-two', theirs), 'success', "another key's prompt is never interrupted");
  });

  it('an interrupt naming a client id stops that client only, whatever the body type', async () => {
    const a = await submit('key-one', 'client-a', 0x333333);
    const b = await submit('key-one', 'client-b', 0x444444);
    await untilRunning('key-one', [a, b]);
    const res = await rawRequest(`${stack.url}/interrupt?clientId=client-a`, {
      headers: { ...auth('key-one'), 'content-type': 'application/x-www-form-urlencoded' },
      body: '{}',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(await outcome('key-one', a), 'interrupted');
    assert.equal(await outcome('key-one', b), 'success');
  });

  it('a targeted interrupt of another key’s prompt does nothing', async () => {
    const theirs = await submit('key-two', 'client-t', 0x555555);
    await untilRunning('key-two', [theirs]);
    const res = await rawRequest(`${stack.url}/interrupt`, {
      headers: { ...auth('key-one'), 'content-type': 'application/json' },
      body: JSON.stringify({ prompt_id: theirs }),
    });
    assert.equal(res.status, 200);
    assert.equal(await outcome('key-two', theirs), 'success');
  });
});
