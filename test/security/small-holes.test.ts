// Points 8, 11-15 of issue 12: s3:// inputs off without an allow-list, no silently open gateway,
// webhook_url refused at submit, /health without a key shows only the status, credential patterns
// matched on the parsed URL, safeSegment trims before testing for dot-only names.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { checkS3Allowed } from '../../src/io/inputs/input-resolver.ts';
import { credentialsFor } from '../../src/io/inputs/credentials.ts';
import { safeKey, safeSegment } from '../../src/io/outputs/storage/storage-backend.ts';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';
import { waitTerminal } from './support.ts';

describe('a gateway with API keys', () => {
  let stack: TestStack;
  const auth = { authorization: 'Bearer k1' };
  before(async () => {
    stack = await startTestStack({ env: { API_KEYS: 'k1' } });
  });
  after(async () => {
    await stack.close();
  });

  test('/health without a valid key answers only the overall status', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
      const res = await stack.request('/health', { headers });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { status: 'ok' });
    }
    const full = await stack.request('/health', { headers: auth });
    assert.equal(full.body.status, 'ok');
    assert.equal(full.body.instances.length, 1);
    assert.match(full.body.instances[0].url, /^http:\/\/127\.0\.0\.1:/);
  });

  test('a webhook_url the SSRF guard would refuse is a 422 at submit and creates no job', async () => {
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://169.254.169.254/latest',
      'https://u:p@example.com/h',
    ]) {
      const res = await stack.request('/api/v2/jobs', {
        body: { workflow: invertPrompt(), webhook_url: url },
        headers: auth,
      });
      assert.equal(res.status, 422, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'webhook_url_forbidden');
    }
    const list = await stack.request('/api/v2/jobs', { headers: auth });
    assert.equal(list.body.jobs.length, 0);
  });

  test('an s3:// input fails with input_url_forbidden when no allow-list is set', async () => {
    const prompt = {
      '1': { class_type: 'LoadImage', inputs: { image: 's3://any-bucket/any/key.png' } },
      '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
      '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 's3' } },
    };
    const res = await stack.request('/api/v2/jobs', { body: { workflow: prompt }, headers: auth });
    assert.ok(res.status === 201 || res.status === 422, JSON.stringify(res.body));
    if (res.status === 201) {
      const job = await waitTerminal(stack.url, res.body.id, auth);
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'input_url_forbidden');
    } else {
      assert.equal(res.body.error.code, 'input_url_forbidden');
    }
  });
});

test('s3:// allow-list: buckets and prefixes, nothing else', () => {
  assert.throws(() => checkS3Allowed('s3://b/k.png', []), { code: 'input_url_forbidden' });
  checkS3Allowed('s3://b/k.png', ['b']);
  checkS3Allowed('s3://b/in/k.png', ['b/in/']);
  assert.throws(() => checkS3Allowed('s3://b/out/k.png', ['b/in/']), { code: 'input_url_forbidden' });
  assert.throws(() => checkS3Allowed('s3://bb/k.png', ['b']), { code: 'input_url_forbidden' });
  assert.throws(() => checkS3Allowed('s3://b/k.png', ['b-other']), { code: 'input_url_forbidden' });
});

test('a non-loopback HOST without API_KEYS refuses to start unless ALLOW_OPEN_ACCESS says so', () => {
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.com']) {
    assert.throws(
      () => loadConfig({ HOST: host }),
      (err: Error) =>
        /^Invalid setting HOST: .*API_KEYS.*ALLOW_OPEN_ACCESS/.test(err.message) &&
        !err.message.includes('\n'),
    );
  }
  assert.equal(loadConfig({ HOST: '0.0.0.0', ALLOW_OPEN_ACCESS: 'true' }).host, '0.0.0.0');
  assert.equal(loadConfig({ HOST: '0.0.0.0', API_KEYS: 'k' }).host, '0.0.0.0');
  assert.equal(loadConfig({ HOST: '127.0.0.1' }).host, '127.0.0.1');
  assert.equal(loadConfig({ HOST: '::1' }).host, '::1');
  assert.equal(loadConfig({}).host, '127.0.0.1');
});

test('credential patterns match the parsed host and path, so no other host ever gets them', () => {
  const headers = { authorization: 'secret' };
  const prefix = [{ urlPattern: 'https://bucket.example.com', headers }];
  assert.equal(credentialsFor(new URL('https://bucket.example.com/a.png'), prefix), headers);
  assert.equal(credentialsFor(new URL('https://bucket.example.com.evil.test/a.png'), prefix), undefined);
  assert.equal(credentialsFor(new URL('https://bucket.example.com@evil.test/a.png'), prefix), undefined);
  assert.equal(credentialsFor(new URL('http://bucket.example.com/a.png'), prefix), undefined);
  assert.equal(credentialsFor(new URL('https://bucket.example.com:8443/a.png'), prefix), undefined);
  const glob = [{ urlPattern: 'https://*.example.com/private/*', headers }];
  assert.equal(credentialsFor(new URL('https://a.example.com/private/x.png'), glob), headers);
  assert.equal(credentialsFor(new URL('https://a.example.com/public/x.png'), glob), undefined);
  // `*` used to cross '/', '?' and '#': none of these may match.
  assert.equal(credentialsFor(new URL('https://evil.test/x.example.com/private/x'), glob), undefined);
  assert.equal(credentialsFor(new URL('https://evil.test/?.example.com/private/x'), glob), undefined);
  assert.equal(credentialsFor(new URL('https://evil.test/#.example.com/private/x'), glob), undefined);
  assert.equal(credentialsFor(new URL('https://a.example.com.evil.test/private/x'), glob), undefined);
  const path = [{ urlPattern: 'https://cdn.example.com/private/', headers }];
  assert.equal(credentialsFor(new URL('https://cdn.example.com/private/a'), path), headers);
  assert.equal(credentialsFor(new URL('https://cdn.example.com/other/private/a'), path), undefined);
});

test('safeSegment trims before testing for dot-only names', () => {
  for (const s of ['.. ', ' ..', ' . ', '..\t', ' .. ']) assert.equal(safeSegment(s), '_', JSON.stringify(s));
  assert.equal(safeSegment(' a.png '), 'a.png');
  assert.equal(safeKey('job', ' .. ', 'x.png'), 'job/_/x.png');
});
