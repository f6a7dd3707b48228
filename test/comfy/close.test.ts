// One close() per long-lived object: a second caller gets the first close's promise, so it cannot
// return before the connections are really closed (a boolean guard let it return at once).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HttpTransport } from '../../src/comfy/http.ts';
import { ComfySocket } from '../../src/comfy/socket.ts';
import { type Simulator, startSimulator } from '../../src/simulator/index.ts';

let sim: Simulator;
let url: string;

before(async () => {
  sim = await startSimulator({ port: 0, instances: 1, nodeDelayMs: 0 });
  url = sim.instances[0]!.url;
});
after(() => sim.close());

test('HttpTransport: concurrent close() calls share one close that ends with the transport closed', async () => {
  const transport = new HttpTransport({
    baseUrl: url,
    requestTimeoutMs: 5000,
    connections: 1,
    retry: { maxAttempts: 1, initialDelayMs: 10, maxDelayMs: 10 },
  });
  const res = await transport.send({ method: 'GET', path: '/system_stats' });
  assert.equal(res.status, 200);
  const first = transport.close();
  const second = transport.close();
  assert.equal(second, first);
  await second;
  assert.equal(transport.closed, true);
  assert.equal(transport.close(), first);
});

test('ComfySocket: a second close() waits for the socket the first one is closing', async () => {
  const states: string[] = [];
  const socket = new ComfySocket({
    url: `${url.replace('http', 'ws')}/ws?clientId=close-test`,
    headers: {},
    openTimeoutMs: 5000,
    reconnect: { initialDelayMs: 10, maxDelayMs: 10, maxAttempts: 1 },
    heartbeat: { intervalMs: 60_000, timeoutMs: 60_000 },
    handlers: {
      state: (state) => states.push(state),
      message: () => undefined,
      binary: () => undefined,
      drop: () => undefined,
      reconnect: () => undefined,
    },
  });
  await socket.connect();
  assert.equal(socket.state, 'open');
  const first = socket.close();
  const second = socket.close();
  assert.equal(second, first);
  await second;
  assert.equal(socket.state, 'closed');
  assert.deepEqual(states.slice(-1), ['closed']);
});
