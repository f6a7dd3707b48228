// The dashboard's static files: the page's own files under src/dashboard/ and the few vendored
// browser libraries (Preact, its hooks, htm, uPlot) read from node_modules. All of them are read
// once, on the first page request, into memory with a gzip copy and an ETag, so later requests cost
// no disk I/O; the set is fixed (nothing a request names is read from disk). No build step: the
// vendored modules' bare `from "preact"` imports are rewritten to the served path.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** One servable file. */
export interface StaticFile {
  body: Buffer;
  gzip: Buffer;
  etag: string;
  contentType: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The folder of the page's own files. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

function entry(body: Buffer, path: string): StaticFile {
  return {
    body,
    gzip: gzipSync(body, { level: 9 }),
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    contentType: TYPES[extname(path)] ?? 'application/octet-stream',
  };
}

function resolvePackage(specifier: string): string {
  return fileURLToPath(import.meta.resolve(specifier));
}

/** Reads every file the dashboard serves, keyed by its path under /dashboard/. */
export function loadDashboardFiles(dir = DASHBOARD_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (folder: string, prefix: string) => {
    for (const item of readdirSync(folder, { withFileTypes: true })) {
      if (item.name.startsWith('.')) continue;
      const path = join(folder, item.name);
      if (item.isDirectory()) walk(path, `${prefix}${item.name}/`);
      else if (TYPES[extname(item.name)]) files.set(`${prefix}${item.name}`, entry(readFileSync(path), path));
    }
  };
  walk(dir, '');
  const uplotDir = dirname(resolvePackage('uplot'));
  const vendor: Array<[string, string]> = [
    ['vendor/preact.mjs', resolvePackage('preact')],
    ['vendor/hooks.mjs', resolvePackage('preact/hooks')],
    ['vendor/htm.mjs', resolvePackage('htm')],
    ['vendor/uplot.js', join(uplotDir, 'uPlot.iife.min.js')],
    ['vendor/uplot.css', join(uplotDir, 'uPlot.min.css')],
  ];
  for (const [name, path] of vendor) {
    let text = readFileSync(path, 'utf8');
    // Browsers cannot resolve bare specifiers without an import map (an inline script the CSP refuses).
    text = text.replace(/from\s*(["'])preact\1/g, 'from"./preact.mjs"');
    files.set(name, entry(Buffer.from(text), path));
  }
  return files;
}

/** Content-Security-Policy of the dashboard: only its own scripts and styles, nothing inline. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
