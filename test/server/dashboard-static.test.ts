// The dashboard's files, read on the first page request (not at start-up): the page with its CSP,
// the vendored modules with their rewritten imports, gzip and ETags, and 404 for anything else.
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startTestStack, type TestStack } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(() => stack.close());

test('serves the page and the vendored modules, gzipped on request, with ETags', async () => {
  const page = await request(`${stack.url}/dashboard/`);
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
  assert.match(await page.body.text(), /<html/i);

  const hooks = await request(`${stack.url}/dashboard/vendor/hooks.mjs`, {
    headers: { 'accept-encoding': 'gzip' },
  });
  assert.equal(hooks.statusCode, 200);
  assert.equal(hooks.headers['content-encoding'], 'gzip');
  const text = gunzipSync(Buffer.from(await hooks.body.arrayBuffer())).toString('utf8');
  assert.match(text, /from"\.\/preact\.mjs"/, 'the bare import is rewritten to the served path');
  const etag = String(hooks.headers.etag);
  const again = await request(`${stack.url}/dashboard/vendor/hooks.mjs`, {
    headers: { 'if-none-match': etag },
  });
  await again.body.dump();
  assert.equal(again.statusCode, 304);

  const missing = await request(`${stack.url}/dashboard/../package.json`);
  await missing.body.dump();
  assert.equal(missing.statusCode, 404);
});
