// The facade's socket hub closes once, whoever asks: a second close() waits for the first to finish
// (sockets gone, server closed) instead of returning at once, and a closed hub refuses new sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { FacadeSockets } from '../../src/server/facade/ws.ts';

test('a second close() of the socket hub returns only after the first close finished', {
  timeout: 10_000,
}, async (t) => {
  const hub = new FacadeSockets({
    maxClients: 8,
    apiKeys: [],
    queueRemaining: () => 0,
    featureFlags: () => ({}),
  });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => {
    if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?clientId=c1`;
  const client = new WebSocket(url);
  const clientClosed = once(client, 'close');
  await once(client, 'open');
  assert.equal(hub.size, 1);

  const order: string[] = [];
  const first = hub.close().then(() => order.push('first'));
  const second = hub.close().then(() => order.push('second'));
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first', 'second'], 'the second caller waited for the first close');
  assert.equal(hub.size, 0);
  await clientClosed;

  const late = new WebSocket(url);
  const [err] = (await once(late, 'error')) as [Error];
  assert.match(err.message, /503/, 'a closed hub refuses new sockets');
});
