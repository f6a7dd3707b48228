// The dashboard's fleet view in real headless Chromium against a gateway over two simulated
// ComfyUI instances: the page is served with a strict CSP, shows both instances live, and a
// simulator crash turns its card unhealthy within the health interval.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { loadDashboardFiles } from '../../src/server/dashboard-static.ts';
import { startSimulator } from '../../src/simulator/index.ts';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { launchBrowser, skipBrowser, UI_TIMEOUT_MS, watchErrors } from './browser.ts';

const skip = skipBrowser();

describe('dashboard fleet view', { skip, timeout: 90_000 }, () => {
  let stack: TestStack;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  before(async () => {
    stack = await startTestStack({ instances: 2, env: { HEALTH_FAILURE_THRESHOLD: '1' } });
    browser = await launchBrowser();
    page = await browser.newPage();
    errors = watchErrors(page);
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('serves the page with a strict CSP, gzip and no inline script', async () => {
    const res = await fetch(`${stack.url}/dashboard/`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const text = await res.text();
    assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline <script>');
    assert.doesNotMatch(text, /<style|\sstyle=/, 'no inline styles');
    const missing = await fetch(`${stack.url}/dashboard/../src/config.ts`);
    assert.notEqual(missing.status, 200);
  });

  it('keeps all of its JavaScript under 100 KB gzipped', () => {
    let gzip = 0;
    for (const [path, file] of loadDashboardFiles()) if (/\.m?js$/.test(path)) gzip += file.gzip.length;
    assert.ok(gzip > 10_000 && gzip < 100_000, `${gzip} bytes`);
  });

  it('shows both instances as healthy, live', async () => {
    await page.goto(`${stack.url}/dashboard/`);
    const ids = stack.gateway.pool.list().map((s) => s.id);
    assert.equal(ids.length, 2);
    for (const id of ids) {
      await page
        .locator(`[data-instance="${id}"] .badge`, { hasText: 'healthy' })
        .first()
        .waitFor({ timeout: UI_TIMEOUT_MS });
    }
    await page.getByTestId('connection').filter({ hasText: 'live' }).waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('[data-instance]').count(), 2);
    const paint = (await page.evaluate(
      "performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime",
    )) as number;
    // 300 ms is the goal on an idle machine (see docs/dashboard.md); a loaded 2-core CI box gets slack.
    assert.ok(paint > 0 && paint < 3000, `first contentful paint at ${paint} ms`);
  });

  it('draws the metrics charts (uPlot, loaded with the view)', async () => {
    await page.goto(`${stack.url}/dashboard/#/metrics`);
    await page.locator('[data-testid="charts"] canvas').nth(4).waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('[data-testid="charts"] .chart').count(), 5);
    await page.goto(`${stack.url}/dashboard/#/fleet`);
    await page.locator('[data-instance]').first().waitFor({ timeout: UI_TIMEOUT_MS });
  });

  it('adds an instance and drains it away again, each after a confirmation', async () => {
    const extra = await startSimulator({ port: 0, instances: 1 });
    const dialogs: string[] = [];
    const accept = (dialog: { message(): string; accept(): Promise<void> }) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    };
    page.on('dialog', accept);
    try {
      const form = page.locator('form.add-instance');
      await form.getByLabel('Instance URL').fill(extra.instances[0]!.url);
      await form.getByLabel('Instance id').fill('extra');
      await form.getByRole('button', { name: 'Add' }).click();
      await page
        .locator('[data-instance="extra"] .card-head .badge', { hasText: 'healthy' })
        .waitFor({ timeout: UI_TIMEOUT_MS });
      assert.ok(stack.gateway.pool.get('extra'));
      await page.locator('[data-instance="extra"]').getByRole('button', { name: 'Drain & remove' }).click();
      await page.locator('[data-instance="extra"]').waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
      assert.equal(stack.gateway.pool.get('extra'), undefined);
      assert.equal(dialogs.length, 2);
      assert.match(dialogs[0]!, /Add ComfyUI instance/);
      assert.match(dialogs[1]!, /Drain and remove instance "extra"/);
    } finally {
      page.off('dialog', accept);
      await extra.close();
    }
  });

  it('turns a crashed instance unhealthy on screen within the health interval', async () => {
    const [victim, survivor] = stack.gateway.pool.list().map((s) => s.id);
    const crashedAt = Date.now();
    await stack.sim.instances[0]!.crash();
    await page
      .locator(`[data-instance="${victim}"] .card-head .badge`, { hasText: 'unhealthy' })
      .waitFor({ timeout: UI_TIMEOUT_MS });
    const elapsed = Date.now() - crashedAt;
    // HEALTH_CHECK_INTERVAL_MS is 1000 in the test stack; allow the slow machine a few intervals.
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
    assert.equal(
      await page.locator(`[data-instance="${survivor}"] .card-head .badge`).textContent(),
      'healthy',
    );
    assert.deepEqual(errors, []);
  });
});
