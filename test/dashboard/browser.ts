// Real headless Chromium for the dashboard tests (Debian's `chromium` through playwright-core).
// Without a Chromium the browser tests are skipped with a message saying so — except in CI
// (CI=true), where a missing browser fails them: .ci/run installs it.
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** A reason to skip the browser tests, or false to run them. */
export function skipBrowser(): string | false {
  if (existsSync(CHROMIUM)) return false;
  // In CI the launch is attempted anyway, so the tests fail loudly instead of passing as skipped.
  if (process.env.CI === 'true') return false;
  return `no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) to run the dashboard browser tests`;
}

/** Launches headless Chromium with a fresh profile (playwright-core creates and removes it). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** Collects the page's console errors and CSP violations, so a test can assert there were none. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Optional capabilities (pipelines, models) answer 404 when the gateway has none: expected.
    const url = msg.location().url;
    if (
      /^Failed to load resource: .*404/.test(msg.text()) &&
      /\/v1\/(pipelines|pipeline-runs|models)/.test(url)
    )
      return;
    errors.push(`${msg.text()} (${url})`);
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  return errors;
}

/** Generous, bounded waits for page conditions on a loaded 2-core machine. */
export const UI_TIMEOUT_MS = 15_000;
