// Webhooks of jobs on a real gateway, simulator and loopback receivers: a failed job is reported after
// its error webhook had its first attempt, deliveries are kept on the job and survive a restart
// (outbox), and job.progress events go to webhooks that ask for them (issue 13 points 7-9).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { startGateway } from '../../src/server/index.ts';
import { invertPrompt, startTestStack, type TestStack, waitForStatus } from '../support/gateway.ts';

type Sim = NonNullable<TestStack['sim']['instances'][0]>;

interface Hit {
  type: string;
  id: string;
  at: number;
  // biome-ignore lint/suspicious/noExplicitAny: test receiver, assertions check the shape
  data: any;
}

/** A webhook receiver whose answer the test decides per request. */
async function receiver(
  handler: (hit: Hit, res: ServerResponse) => void,
): Promise<{ url: string; hits: Hit[]; server: Server; next: (type: string) => Promise<Hit> }> {
  const hits: Hit[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const hit = { type: body.type, id: String(req.headers['webhook-id']), at: Date.now(), data: body.data };
      hits.push(hit);
      server.emit('hit', hit);
      handler(hit, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const next = (type: string) =>
    new Promise<Hit>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} webhook in 15 s`)), 15_000);
      const onHit = (hit: Hit) => {
        if (hit.type !== type) return;
        clearTimeout(timer);
        server.off('hit', onHit);
        resolve(hit);
      };
      server.on('hit', onHit);
    });
  return { url: `http://127.0.0.1:${port}/hook`, hits, server, next };
}

const servers: Server[] = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

describe('failed jobs and their error webhook', () => {
  let stack: TestStack;
  const sim = () => stack.sim.instances[0] as Sim;
  before(async () => {
    stack = await startTestStack({
      env: { ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1', WEBHOOK_HOLD_MS: '3000' },
      nodeDelayMs: 0,
    });
  });
  after(async () => {
    await stack.close();
  });

  test('a failed job is reported only after its error webhook was answered', async () => {
    let answeredAt = 0;
    const r = await receiver((_hit, res) => {
      setTimeout(() => {
        answeredAt = Date.now();
        res.writeHead(204).end();
      }, 400);
    });
    servers.push(r.server);
    sim().setFaults({ failAtNode: '3' });
    try {
      const res = await stack.request('/api/v2/jobs?wait=20', {
        body: { workflow: invertPrompt('held'), webhook_url: r.url },
      });
      const reportedAt = Date.now();
      assert.equal(res.body.status, 'failed', JSON.stringify(res.body));
      assert.ok(answeredAt > 0, 'the receiver answered before the job was reported failed');
      assert.ok(reportedAt >= answeredAt, `reported ${answeredAt - reportedAt} ms before the webhook`);
      assert.equal(r.hits[0]?.type, 'job.failed');
      assert.equal(r.hits[0]?.data.status, 'failed');
      // The delivery and its attempt are on the job.
      assert.equal(res.body.webhooks.length, 1, JSON.stringify(res.body.webhooks));
      assert.equal(res.body.webhooks[0].status, 'delivered');
      assert.equal(res.body.webhooks[0].attempts[0].status_code, 204);
      assert.equal(res.body.webhooks[0].id, r.hits[0]?.id);
    } finally {
      sim().clearFaults();
    }
  });

  test('a receiver that does not answer holds the report only for the short first-attempt timeout', async () => {
    const r = await receiver(() => {
      // Never answers.
    });
    servers.push(r.server);
    sim().setFaults({ failAtNode: '3' });
    try {
      const t0 = Date.now();
      const res = await stack.request('/api/v2/jobs?wait=20', {
        body: { workflow: invertPrompt('slowhook'), webhook_url: r.url },
      });
      const elapsed = Date.now() - t0;
      assert.equal(res.body.status, 'failed');
      assert.ok(elapsed >= 2900 && elapsed < 8000, `reported after ${elapsed} ms (WEBHOOK_HOLD_MS=3000)`);
      assert.equal(res.body.webhooks[0].status, 'pending');
    } finally {
      sim().clearFaults();
    }
  });

  test('job.progress webhooks go only to jobs that ask for them, throttled, before the terminal event', async () => {
    const r = await receiver((_hit, res) => res.writeHead(200).end());
    servers.push(r.server);
    sim().setFaults({ nodeDelayMs: 150 });
    try {
      const succeeded = r.next('job.succeeded');
      const asked = await stack.request('/api/v2/jobs', {
        body: { workflow: invertPrompt('progress'), webhook_url: r.url, webhook_events: ['job.progress'] },
      });
      assert.equal(asked.status, 201, JSON.stringify(asked.body));
      await succeeded;
      const mine = r.hits.filter((h) => h.data.id === asked.body.id);
      const progress = mine.filter((h) => h.type === 'job.progress');
      assert.ok(progress.length >= 1, JSON.stringify(mine.map((h) => h.type)));
      assert.ok(progress.length <= 2, `throttled: ${progress.length} progress events in < 1 s`);
      assert.equal(typeof progress[0]?.data.progress.value, 'number');
      assert.equal(mine.at(-1)?.type, 'job.succeeded');

      const quiet = r.next('job.succeeded');
      const plain = await stack.request('/api/v2/jobs', {
        body: { workflow: invertPrompt('noprogress'), webhook_url: r.url },
      });
      await quiet;
      assert.deepEqual(
        r.hits.filter((h) => h.data.id === plain.body.id).map((h) => h.type),
        ['job.succeeded'],
      );
    } finally {
      sim().clearFaults();
    }
  });
});

test('a pending delivery survives a restart of the gateway (outbox in the job store)', async () => {
  let accept = false;
  const r = await receiver((_hit, res) => res.writeHead(accept ? 200 : 503).end());
  servers.push(r.server);
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-outbox-'));
  const stack = await startTestStack({
    env: {
      JOB_STORE: 'sqlite',
      DATA_DIR: dataDir,
      ALLOW_PRIVATE_INPUT_URLS: '127.0.0.1',
      SHUTDOWN_GRACE_MS: '200',
    },
  });
  let second: Awaited<ReturnType<typeof startGateway>> | undefined;
  try {
    const firstHit = r.next('job.succeeded');
    const created = await stack.request('/api/v2/jobs', {
      body: { workflow: invertPrompt('outbox'), webhook_url: r.url },
    });
    const id = created.body.id;
    await waitForStatus(stack, id, ['succeeded']);
    const hit = await firstHit;
    const pending = (await stack.request(`/api/v2/jobs/${id}`)).body;
    assert.equal(pending.webhooks[0].status, 'pending', JSON.stringify(pending.webhooks));
    assert.ok(pending.webhooks[0].attempts.length >= 1);
    assert.equal(pending.webhooks[0].attempts[0].status_code, 503);
    await stack.gateway.close();

    accept = true;
    const resumed = r.next('job.succeeded');
    second = await startGateway(stack.config, { logger: pino({ level: 'silent' }) });
    const again = await resumed;
    assert.equal(again.id, hit.id, 'the same webhook-id, so receivers can deduplicate');
    assert.equal(again.data.id, id);
    // The delivered state is written back to the job.
    const job = await waitFor(async () => {
      // biome-ignore lint/suspicious/noExplicitAny: the Job as JSON
      const body = (await (await fetch(`${second?.url}/api/v2/jobs/${id}`)).json()) as any;
      return body.webhooks?.[0]?.status === 'delivered' ? body : null;
    });
    assert.ok(job.webhooks[0].attempts.length >= 2, JSON.stringify(job.webhooks[0].attempts));
    assert.equal(job.webhooks[0].attempts.at(-1).status_code, 200);
  } finally {
    await second?.close();
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** Re-checks `probe` each time the event loop is free, up to 10 s. */
async function waitFor<T>(probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error('condition not met in 10 s');
    await new Promise((r) => setImmediate(r));
  }
}
