// Swagger UI at /docs: not loaded at start-up (its module and @fastify/static come with the first
// request), then served as before: the page, the live spec, static files with validators, and the
// gateway's own 404 for paths it does not serve.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startTestStack, type TestStack } from '../support/gateway.ts';

const loaded = (name: string) =>
  Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes(name));

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(() => stack.close());

test('Swagger UI loads on the first /docs request and serves the live spec', async () => {
  assert.equal(loaded('@fastify/swagger-ui'), false, 'not loaded at start-up');
  assert.equal(loaded('@fastify/static'), false);
  const page = await fetch(`${stack.url}/docs/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await page.text(), /swagger-ui/);
  assert.equal(loaded('@fastify/swagger-ui'), true);
  assert.deepEqual((await stack.request('/docs/json')).body, (await stack.request('/openapi.json')).body);
  const redirect = await fetch(`${stack.url}/docs/static/index.html`, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), '/docs/');
});

test('static files keep their validators, and unknown paths get the gateway 404', async () => {
  const css = await fetch(`${stack.url}/docs/static/swagger-ui.css`);
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type') ?? '', /text\/css/);
  const etag = css.headers.get('etag');
  assert.ok(etag);
  await css.arrayBuffer();
  // undici's request, not fetch: fetch adds `cache-control: no-cache` to conditional requests.
  const again = await request(`${stack.url}/docs/static/swagger-ui.css`, {
    headers: { 'if-none-match': etag },
  });
  await again.body.dump();
  assert.equal(again.statusCode, 304);
  const missing = await stack.request('/docs/static/nope.js');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'not_found');
});
