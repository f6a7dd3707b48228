// Chooses between the bundled build (dist/, `npm run build`, run by `npm ci`) and the TypeScript
// sources. The bundle runs only while every file it was built from has the size and modification
// time dist/manifest.json recorded: after a source edit, a checkout or an install without a
// rebuild, the sources run instead (with one line on stderr), so a stale bundle never runs.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire, getCompileCacheDir } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';

export const ROOT = join(import.meta.dirname, '..');

function readManifest(dist) {
  try {
    return JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'));
  } catch {
    return null;
  }
}

/** Why the bundle in `dist` cannot run, or null when it is fresh. */
export function staleReason(dist = join(ROOT, 'dist'), root = ROOT) {
  const manifest = readManifest(dist);
  if (manifest === null) return 'not built';
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

/** Whether the bundle can run; says why not on stderr unless it was simply never built. */
function fresh(dist) {
  if (process.env.COMFY_GATEWAY_SOURCES === '1') return false;
  const reason = staleReason(dist);
  if (reason === null) return true;
  if (reason !== 'not built')
    process.stderr.write(
      `comfy-gateway: running the TypeScript sources, dist/ is stale (${reason}; npm run build)\n`,
    );
  return false;
}

/**
 * The URL of entry `name` (server) of the bundle when it is fresh; otherwise `fallback` (a source
 * file URL), after saying why on stderr unless the bundle was simply never built.
 */
export function entryUrl(name, fallback, dist = join(ROOT, 'dist')) {
  return fresh(dist) ? pathToFileURL(join(dist, `${name}.js`)).href : fallback;
}

/** FNV-1a of `text`, as 8 hex digits (node:crypto's ES module facade alone costs a start-up ~10 ms). */
function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/** How long after start the code cache is written (or at exit, if sooner): `serve` is ready by then. */
const CACHE_AFTER_MS = 5000;
/** Published by the gateway's idle compaction just before it runs (src/server/idle-compaction.ts). */
const IDLE_CHANNEL = 'comfy-gateway:idle';

/**
 * Runs the command line: the bundled dist/main.cjs when the bundle is fresh, otherwise `fallback`
 * (the sources' main.ts URL). The bundle runs through vm.Script with a V8 code cache of its own, in
 * Node's compile cache folder (NODE_COMPILE_CACHE; none with NODE_DISABLE_COMPILE_CACHE=1). Node's
 * own cache is made right after compiling, so it holds only the top level and every function a
 * start-up calls was compiled again at every start; this one is made 5 s after a start that found
 * none (or a rejected one), or sooner when the gateway goes idle or the process exits, so it holds
 * every function compiled by then. It is named by the
 * script's hash (V8 checks only a script's length), the command and Node's options.
 */
export async function runMain(fallback, dist = join(ROOT, 'dist'), options = {}) {
  if (!fresh(dist)) {
    await import(fallback);
    return 'sources';
  }
  const file = join(dist, 'main.cjs');
  const source = readFileSync(file, 'latin1');
  const folder = options.cacheDir ?? getCompileCacheDir();
  const command = process.argv[2] ?? '';
  const key = `${readManifest(dist)?.mainHash}-${/^[a-z]+$/.test(command) ? command : ''}-${fnv1a(process.execArgv.join('\0'))}`;
  const cacheFile = folder ? join(folder, `comfy-gateway-${key}.bin`) : null;
  let cachedData;
  if (cacheFile) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {}
  }
  const script = new Script(Module.wrap(source), { filename: file, cachedData });
  if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
    let written = false;
    const write = () => {
      if (written) return;
      written = true;
      unsubscribe(IDLE_CHANNEL, write);
      try {
        const temporary = `${cacheFile}.${process.pid}`;
        writeFileSync(temporary, script.createCachedData());
        renameSync(temporary, cacheFile);
      } catch {
        // A read-only or full cache folder: start-ups compile as before.
      }
    };
    // The gateway says when it goes idle, before its memory-reducing GC (which drops compiled code).
    subscribe(IDLE_CHANNEL, write);
    setTimeout(write, options.cacheAfterMs ?? CACHE_AFTER_MS).unref();
    // A process that ends sooner (a short command, a gateway stopped right away) writes it then.
    process.once('exit', write);
  }
  const module = new Module(file);
  module.filename = file;
  module.paths = Module._nodeModulePaths(dirname(file));
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  if (cachedData === undefined) return 'no cache';
  return script.cachedDataRejected ? 'cache rejected' : 'cache accepted';
}
