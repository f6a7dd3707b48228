// The dashboard's jobs table over 100,000 stored jobs: the listing is paged on the server through
// the SQLite indexes (by time, by status, by workflow name — checked with EXPLAIN QUERY PLAN), and
// the page walks pages and filters in real headless Chromium.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { SqliteJobStore } from '../../src/jobs/index.ts';
import { jobRecord } from '../support/job-record.ts';
import { startTestStack, type TestStack } from '../support/gateway.ts';
import { launchBrowser, skipBrowser, UI_TIMEOUT_MS, watchErrors } from './browser.ts';

const TOTAL = 100_000;

/** Writes TOTAL finished jobs straight into the store's file (one SQL statement; the store's own schema). */
function seed(path: string, now: number): void {
  new SqliteJobStore({ path }).close();
  const db = new DatabaseSync(path);
  const template = jobRecord('x', 0, 'succeeded', { expires_at: now + 86_400_000, completed_at: now });
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${TOTAL - 1}),
     rows AS (SELECT printf('job-%06d', i) AS id,
                     CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END AS status,
                     :base + i AS created,
                     CASE WHEN i % 1000 = 0 THEN 'rare' WHEN i % 2 = 1 THEN 'alpha' ELSE 'beta' END AS name
              FROM n)
     INSERT INTO jobs (id, status, created_at, expires_at, data, workflow)
     SELECT id, status, created, :expires,
            json_set(:data, '$.id', id, '$.status', status, '$.created_at', created, '$.request.name', name), :workflow
     FROM rows`,
  ).run({
    base: now - 2 * TOTAL,
    expires: now + 86_400_000,
    data: JSON.stringify({ ...template, workflow: undefined }),
    workflow: JSON.stringify(template.workflow),
  });
  db.close();
}

/** The plan SQLite picks for the store's listing query (same shape as SqliteJobStore.list builds). */
function plan(path: string, where: string): string {
  const db = new DatabaseSync(path);
  try {
    const rows = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT data, workflow FROM jobs ${where} ORDER BY created_at DESC, id DESC LIMIT 51`,
      )
      .all() as Array<{ detail: string }>;
    return rows.map((r) => r.detail).join(' | ');
  } finally {
    db.close();
  }
}

describe('dashboard jobs table over 100,000 stored jobs', { skip: skipBrowser(), timeout: 120_000 }, () => {
  let dir: string;
  let path: string;
  let stack: TestStack;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-dash-paging-'));
    path = join(dir, 'jobs.sqlite');
    seed(path, Date.now());
    stack = await startTestStack({ store: new SqliteJobStore({ path }) });
    browser = await launchBrowser();
    page = await browser.newPage();
    errors = watchErrors(page);
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists through an index for every filter, never sorting the table', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /jobs_by_created/],
      ["WHERE status IN ('failed')", /jobs_by_status/],
      ["WHERE json_extract(data, '$.request.name') = 'rare'", /jobs_by_name/],
      [
        "WHERE json_extract(data, '$.request.name') = 'rare' AND (created_at < 5 OR (created_at = 5 AND id < 'x'))",
        /jobs_by_name/,
      ],
    ];
    for (const [where, index] of cases) {
      const detail = plan(path, where);
      assert.match(detail, index, where);
      assert.doesNotMatch(detail, /TEMP B-TREE/, `${where}: ${detail}`);
    }
  });

  it('pages newest first and filters by status and name on the server', async () => {
    const seen = new Set<string>();
    let cursor: string | null = null;
    let last = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const res = await stack.request(`/v1/dashboard/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.jobs.length, 100);
      for (const job of res.body.jobs) {
        assert.ok(!seen.has(job.id));
        assert.ok(job.created_at < last);
        seen.add(job.id);
        last = job.created_at;
      }
      cursor = res.body.next_cursor;
    }
    assert.equal([...seen][0], 'job-099999');
    const rare = await stack.request('/v1/dashboard/jobs?name=rare&limit=60');
    assert.equal(rare.body.jobs.length, 60);
    assert.ok(rare.body.jobs.every((j: { name: string }) => j.name === 'rare'));
    const rest = await stack.request(`/v1/dashboard/jobs?name=rare&limit=60&cursor=${rare.body.next_cursor}`);
    assert.equal(rest.body.next_cursor, null);
    assert.equal(rest.body.jobs.length, TOTAL / 1000 - 60);
    const failed = await stack.request('/v1/dashboard/jobs?status=failed&name=alpha&limit=10');
    assert.equal(failed.body.jobs.length, 0, 'alpha jobs are odd-numbered, failed ones multiples of 10');
    const bad = await stack.request('/v1/dashboard/jobs?cursor=nonsense');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_request');
  });

  it('walks pages and filters in the page', async () => {
    await page.goto(`${stack.url}/dashboard/#/jobs`);
    const rows = page.locator('[data-testid="jobs-table"] tbody tr[data-job]');
    await page.locator('tr[data-job="job-099999"]').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await rows.count(), 50);
    await page.getByTestId('next-page').click();
    await page.locator('tr[data-job="job-099949"]').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await page.locator('tr[data-job="job-099999"]').count(), 0);
    await page.getByRole('button', { name: '‹ Newer' }).click();
    await page.locator('tr[data-job="job-099999"]').waitFor({ timeout: UI_TIMEOUT_MS });

    await page.locator('select[name="status"]').selectOption('failed');
    await page.locator('input[name="name"]').fill('rare');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('tr[data-job="job-099000"]').waitFor({ timeout: UI_TIMEOUT_MS });
    assert.equal(await rows.count(), 50);
    const statuses = await rows.locator('td:first-child').allTextContents();
    assert.ok(statuses.every((s) => s === 'failed'));
    assert.deepEqual(errors, []);
  });
});
