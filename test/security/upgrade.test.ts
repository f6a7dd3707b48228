// Attack 1 of issue 12: upgrade requests to paths nobody serves used to stay open forever (CLOSE_WAIT,
// no HTTP timeouts) until the process ran out of file descriptors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { healthLatency, openFds, rawExchange, upgradeRequest } from './support.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ env: { API_KEYS: 'k1' } });
});
after(async () => {
  await stack.close();
});

test('an upgrade request to a path nobody serves is answered 404 and closed by the server', async () => {
  const { text, closedByServer } = await rawExchange(stack.url, upgradeRequest('/api/v2/jobs'));
  assert.match(text, /^HTTP\/1\.1 404 /);
  assert.ok(closedByServer, 'the server closes the socket');
});

test('an unauthenticated upgrade to /ws is refused 401 and closed by the server', async () => {
  const { text, closedByServer } = await rawExchange(stack.url, upgradeRequest('/ws'));
  assert.match(text, /^HTTP\/1\.1 401 /);
  assert.ok(closedByServer);
});

test('an authenticated upgrade to /ws still becomes a WebSocket', async () => {
  const ws = new WebSocket(`${stack.url.replace('http', 'ws')}/ws?token=k1&clientId=c1`);
  const first = await new Promise<string>((resolve, reject) => {
    ws.onmessage = (m) => resolve(String(m.data));
    ws.onerror = () => reject(new Error('socket failed'));
  });
  assert.equal(JSON.parse(first).type, 'status');
  ws.close();
});

test('2,000 unanswerable upgrades leave no file descriptor behind and /health keeps answering', async () => {
  const baseline = openFds();
  const batch = 200;
  for (let i = 0; i < 2000; i += batch) {
    const results = await Promise.all(
      Array.from({ length: batch }, (_, j) => rawExchange(stack.url, upgradeRequest(`/x${i + j}`))),
    );
    assert.ok(results.every((r) => r.closedByServer && r.text.startsWith('HTTP/1.1 404')));
  }
  assert.ok((await healthLatency(stack.url)) < 1000);
  // Client and server ends are both closed once every exchange resolved; allow a little slack for
  // sockets the test runner itself opens.
  assert.ok(openFds() - baseline < 20, `fds grew from ${baseline} to ${openFds()}`);
});
