// Chooses between the bundled build (dist/, `npm run build`, run by `npm ci`) and the TypeScript
// sources. The bundle runs only while every file it was built from has the size and modification
// time dist/manifest.json recorded: after a source edit, a checkout or an install without a
// rebuild, the sources run instead (with one line on stderr), so a stale bundle never runs.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = join(import.meta.dirname, '..');

/** Why the bundle in `dist` cannot run, or null when it is fresh. */
export function staleReason(dist = join(ROOT, 'dist'), root = ROOT) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'));
  } catch {
    return 'not built';
  }
  for (const [input, [size, mtimeMs]] of Object.entries(manifest.inputs)) {
    let info;
    try {
      info = statSync(join(root, input));
    } catch {
      return `${input} is gone`;
    }
    if (info.size !== size || info.mtimeMs !== mtimeMs) return `${input} changed`;
  }
  return null;
}

/**
 * The URL of entry `name` (main or server) of the bundle when it is fresh; otherwise `fallback` (a
 * source file URL), after saying why on stderr unless the bundle was simply never built.
 */
export function entryUrl(name, fallback, dist = join(ROOT, 'dist')) {
  if (process.env.COMFY_GATEWAY_SOURCES === '1') return fallback;
  const reason = staleReason(dist);
  if (reason === null) return pathToFileURL(join(dist, `${name}.js`)).href;
  if (reason !== 'not built')
    process.stderr.write(
      `comfy-gateway: running the TypeScript sources, dist/ is stale (${reason}; npm run build)\n`,
    );
  return fallback;
}
