// The dashboard's security in real headless Chromium: with API_KEYS set nothing of the fleet loads
// without the key (the page asks for one, keeps it for the tab, and every call — the live stream
// too — sends it); XSS payloads in job metadata, node errors, output file names and workflow texts
// render as text, run nothing, and trip no CSP violation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';
import { launchBrowser, skipBrowser, UI_TIMEOUT_MS, watchErrors } from './browser.ts';

const KEY = 'dashboard-test-key';
const AUTH = { authorization: `Bearer ${KEY}` };
/** Each payload sets window.pwned when it runs. */
const XSS = {
  img: '<img src=x onerror="window.pwned=1">',
  script: '<script>window.pwned=2</script>',
  svg: '<svg onload="window.pwned=3"></svg>',
};

const SOLID = {
  '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
  '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'solid' } },
};

describe('dashboard security', { skip: skipBrowser(), timeout: 120_000 }, () => {
  let stack: TestStack;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-dash-wf-'));
    writeFileSync(join(dir, 'solid.json'), JSON.stringify(SOLID));
    writeFileSync(
      join(dir, 'xss.yaml'),
      [
        `description: ${JSON.stringify(`Solid ${XSS.img}`)}`,
        'workflow: solid.json',
        'parameters:',
        '  prefix:',
        '    type: string',
        `    description: ${JSON.stringify(XSS.script)}`,
        '    target: { node: "2", input: filename_prefix }',
        '  size:',
        '    type: enum',
        `    enum: [8, 16]`,
        `    description: ${JSON.stringify(XSS.svg)}`,
        '    target: { node: "1", input: width }',
      ].join('\n'),
    );
    stack = await startTestStack({ instances: 2, env: { API_KEYS: KEY, WORKFLOWS_DIR: dir } });
    browser = await launchBrowser();
    page = await browser.newPage();
    errors = watchErrors(page);
    // Any CSP violation is recorded by the page itself.
    // Browser-side code as a string: the tests compile without the DOM types.
    await page.addInitScript(`
      window.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
    `);
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows nothing of the fleet without the key, and everything with it', async () => {
    const answers: Array<{ url: string; status: number }> = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/')) answers.push({ url: r.url(), status: r.status() });
    });
    for (const path of ['/v1/dashboard/events', '/v1/stats', '/v1/dashboard/jobs', '/v1/instances']) {
      assert.equal((await fetch(stack.url + path)).status, 401, path);
    }
    await page.goto(`${stack.url}/dashboard/`);
    const login = page.getByTestId('login');
    await login.waitFor({ timeout: UI_TIMEOUT_MS });
    const ids = stack.gateway.pool.list().map((s) => s.id);
    const text = (await page.textContent('body')) ?? '';
    for (const id of ids) assert.ok(!text.includes(id), `instance ${id} visible before sign-in`);
    assert.equal(await page.locator('[data-instance]').count(), 0);
    assert.ok(
      answers.every((a) => a.status === 401),
      JSON.stringify(answers),
    );

    await login.locator('input[name="api-key"]').fill('wrong-key');
    await login.getByRole('button', { name: 'Sign in' }).click();
    await login.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('[data-instance]').count(), 0);

    await login.locator('input[name="api-key"]').fill(KEY);
    await login.getByRole('button', { name: 'Sign in' }).click();
    for (const id of ids) await page.locator(`[data-instance="${id}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
    await page.getByTestId('connection').filter({ hasText: 'live' }).waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await page.evaluate('sessionStorage.length'), 1);
    // Kept for the tab: a reload goes straight to the fleet.
    await page.reload();
    await page.locator(`[data-instance="${ids[0]}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await page.getByTestId('login').count(), 0);
  });

  it('renders XSS payloads in metadata, node errors, file names and workflow texts as text', async () => {
    errors.length = 0; // the wrong key's 401 above was expected
    const metadata = { note: XSS.img, html: XSS.script };
    const withMeta = await stack.request('/api/v2/jobs?wait=20', {
      body: { workflow: invertPrompt(XSS.img), metadata },
      headers: AUTH,
    });
    assert.equal(withMeta.body.status, 'succeeded', JSON.stringify(withMeta.body.error));
    for (const sim of stack.sim.instances) {
      sim.setFaults({ failAtNode: '3', failException: { type: XSS.svg, message: XSS.img } });
    }
    let failedId: string;
    try {
      const failed = await stack.request('/api/v2/jobs?wait=20', {
        body: { workflow: invertPrompt() },
        headers: AUTH,
      });
      assert.equal(failed.body.status, 'failed');
      failedId = failed.body.id;
    } finally {
      for (const sim of stack.sim.instances) sim.clearFaults();
    }

    // Jobs table: metadata as text.
    await page.goto(`${stack.url}/dashboard/#/jobs`);
    const row = page.locator(`tr[data-job="${withMeta.body.id}"]`);
    await row.waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match((await row.textContent()) ?? '', /<img src=x onerror=/);

    // Job view: metadata, and the output whose file name carries the payload.
    await page.goto(`${stack.url}/dashboard/#/jobs/${withMeta.body.id}`);
    await page.getByTestId('metadata').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.deepEqual(JSON.parse((await page.getByTestId('metadata').textContent()) ?? ''), metadata);
    const caption = page.locator('[data-testid="outputs"] figcaption .mono').first();
    await caption.waitFor({ timeout: UI_TIMEOUT_MS });
    assert.match((await caption.textContent()) ?? '', /<img src=x onerror=/);

    // Job view of the failed job: the node error's exception and message as text.
    await page.goto(`${stack.url}/dashboard/#/jobs/${failedId}`);
    const error = page.getByTestId('job-error');
    await error.waitFor({ timeout: UI_TIMEOUT_MS });
    const errorText = (await error.textContent()) ?? '';
    assert.ok(errorText.includes(XSS.img), errorText);
    assert.ok(errorText.includes(XSS.svg), errorText);

    // Playground: the template's description, parameter descriptions and enum values as text.
    await page.goto(`${stack.url}/dashboard/#/playground/xss`);
    const form = page.getByTestId('schema-form');
    await form.waitFor({ timeout: UI_TIMEOUT_MS });
    const panel = (await page.locator('.panel', { has: form }).textContent()) ?? '';
    for (const payload of [XSS.img, XSS.script, XSS.svg]) assert.ok(panel.includes(payload), payload);

    assert.equal(await page.locator('img[src="x"], svg[onload], script:not([src])').count(), 0);
    assert.equal(await page.evaluate('window.pwned'), undefined);
    assert.deepEqual(await page.evaluate('window.cspViolations'), []);
    assert.deepEqual(errors, []);
  });
});
