// The dashboard's job views in real headless Chromium against a gateway over two simulated
// instances: a job submitted from the playground form appears live in the jobs table, shows
// progress and then its output image; form bounds are checked before submitting; a running job is
// cancelled from its job view.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';
import { launchBrowser, skipBrowser, UI_TIMEOUT_MS, watchErrors } from './browser.ts';

const WORKFLOWS = join(import.meta.dirname, '..', '..', 'workflows');

const RESULT_IMG = '[data-testid="run-result"] figure img';

interface ImageElement {
  decode(): Promise<void>;
  naturalWidth: number;
  naturalHeight: number;
}

/** Natural size of the playground's result image, once it has loaded. */
async function imageSize(page: Page): Promise<number[]> {
  const image = page.locator(RESULT_IMG);
  await image.waitFor({ timeout: UI_TIMEOUT_MS });
  return image.evaluate((img: ImageElement) =>
    img.decode().then(() => [img.naturalWidth, img.naturalHeight]),
  );
}

function png(width: number, height: number): Buffer {
  const image = new PNG({ width, height });
  image.data.fill(200);
  return PNG.sync.write(image);
}

describe('dashboard jobs, job view and playground', { skip: skipBrowser(), timeout: 120_000 }, () => {
  let stack: TestStack;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  before(async () => {
    // Slow nodes, so progress is there to see.
    stack = await startTestStack({ instances: 2, nodeDelayMs: 200, env: { WORKFLOWS_DIR: WORKFLOWS } });
    browser = await launchBrowser();
    page = await browser.newPage();
    errors = watchErrors(page);
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('runs a workflow from its generated form: the job appears live, shows progress, then its image', async () => {
    // A second tab watches the jobs table while the first submits.
    const table = await browser.newPage();
    await table.goto(`${stack.url}/dashboard/#/jobs`);
    await table.getByTestId('connection').filter({ hasText: 'live' }).waitFor({ timeout: UI_TIMEOUT_MS });
    await table.locator('[data-testid="jobs-table"] tbody').waitFor({ timeout: UI_TIMEOUT_MS });

    await page.goto(`${stack.url}/dashboard/#/playground/resize`);
    const form = page.getByTestId('schema-form');
    await form.waitFor({ timeout: UI_TIMEOUT_MS });
    // Bounds from the schema: rejected in the page, nothing submitted.
    await form.locator('input[name="width"]').fill('9000');
    await form.getByRole('button', { name: 'Run' }).click();
    await form.getByText('width: at most 8192').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal((await stack.request('/api/v2/jobs')).body.jobs.length, 0);

    // Watch for the progress bar even if it shows only briefly.
    // Browser-side code as strings: the tests compile without the DOM types.
    await page.evaluate(`(() => {
      window.sawProgress = false;
      new MutationObserver(() => {
        if (document.querySelector('[data-testid="live-progress"] [role="progressbar"]')) window.sawProgress = true;
      }).observe(document.body, { subtree: true, childList: true });
    })()`);
    await form.locator('input[name="width"]').fill('40');
    await form.locator('input[name="height"]').fill('24');
    await form.locator('select[name="method"]').selectOption({ label: 'nearest-exact' });
    await form.getByRole('button', { name: 'Run' }).click();

    const result = page.getByTestId('run-result');
    const image = result.locator('figure img');
    await image.waitFor({ timeout: UI_TIMEOUT_MS });
    const size = await imageSize(page);
    assert.deepEqual(size, [40, 24]);
    assert.equal(await page.evaluate('window.sawProgress'), true);
    await result.locator('.badge', { hasText: 'succeeded' }).waitFor({ timeout: UI_TIMEOUT_MS });

    // The job the form made, with the parameters the form sent.
    const jobs = (await stack.request('/v1/dashboard/jobs')).body.jobs;
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].name, 'resize');
    const { workflow } = (await stack.request(`/api/v2/jobs/${jobs[0].id}/workflow`)).body;
    const scale = Object.values(
      workflow as Record<string, { class_type: string; inputs: Record<string, unknown> }>,
    ).find((n) => n.class_type === 'ImageScale');
    assert.equal(scale?.inputs.upscale_method, 'nearest-exact');

    // It appeared in the other tab without a reload, and finished there too.
    const row = table.locator(`tr[data-job="${jobs[0].id}"]`);
    await row.locator('.badge', { hasText: 'succeeded' }).waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await row.locator('td').nth(1).textContent(), 'resize');
    await table.close();
  });

  it('takes an image parameter from a picked file', async () => {
    await page.goto(`${stack.url}/dashboard/#/playground/invert`);
    const form = page.getByTestId('schema-form');
    await form.waitFor({ timeout: UI_TIMEOUT_MS });
    await form
      .locator('[data-field="image"] input[type="file"]')
      .setInputFiles({ name: 'in.png', mimeType: 'image/png', buffer: png(12, 7) });
    await form.locator('[data-field="image"] img').waitFor({ timeout: UI_TIMEOUT_MS });
    await form.getByRole('button', { name: 'Run' }).click();
    const size = await imageSize(page);
    assert.deepEqual(size, [12, 7]);
  });

  it('runs a pipeline from its generated form and lists its run; the models view lights up', async () => {
    await page.goto(`${stack.url}/dashboard/#/playground/pipeline%3Agrow-until-wide`);
    const form = page.getByTestId('schema-form');
    await form.waitFor({ timeout: UI_TIMEOUT_MS });
    await form
      .locator('[data-field="image"] input[type="file"]')
      .setInputFiles({ name: 'in.png', mimeType: 'image/png', buffer: png(10, 4) });
    await form.locator('[data-field="image"] img').waitFor({ timeout: UI_TIMEOUT_MS });
    await form.locator('input[name="min_width"]').fill('30');
    await form.getByRole('button', { name: 'Run' }).click();
    const result = page.getByTestId('run-result');
    await result.locator('.toolbar .badge', { hasText: 'succeeded' }).waitFor({ timeout: UI_TIMEOUT_MS });
    // 10 → 20 → 40 px wide: two iterations of the grow step, then the invert step.
    assert.match((await result.locator('pre').last().textContent()) ?? '', /"width": 40/);
    const runs = (await stack.request('/v1/pipeline-runs')).body.runs;
    assert.equal(runs.length, 1);
    const named = (await stack.request('/v1/dashboard/jobs?name=scale2x')).body.jobs;
    assert.equal(named.length, 2, 'the step jobs carry their workflow name');

    await page.goto(`${stack.url}/dashboard/#/pipelines`);
    await page
      .locator('[data-testid="view-pipelines"] td', { hasText: runs[0].id })
      .waitFor({ timeout: UI_TIMEOUT_MS });
    await page.goto(`${stack.url}/dashboard/#/models`);
    await page
      .locator('[data-testid="view-models"] h3', { hasText: 'Downloads' })
      .waitFor({ timeout: UI_TIMEOUT_MS });
  });

  it('cancels a running job from its job view', async () => {
    for (const sim of stack.sim.instances) sim.setFaults({ hang: true });
    try {
      const created = await stack.request('/api/v2/jobs', { body: { workflow: invertPrompt('hang') } });
      assert.equal(created.status, 201);
      const id = created.body.id as string;
      await page.goto(`${stack.url}/dashboard/#/jobs/${id}`);
      const view = page.getByTestId('job-view');
      await view.locator('.toolbar .badge', { hasText: 'running' }).waitFor({ timeout: UI_TIMEOUT_MS });
      await view.getByRole('button', { name: 'Cancel job' }).click();
      await view.locator('.toolbar .badge', { hasText: 'canceled' }).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal((await stack.request(`/api/v2/jobs/${id}`)).body.status, 'canceled');
    } finally {
      for (const sim of stack.sim.instances) sim.clearFaults();
    }
    assert.deepEqual(errors, []);
  });
});
