// Types of bin/bundle.js (plain JavaScript, so the command starts without type stripping).
/** The repository root. */
export const ROOT: string;
/** Why the bundle in `dist` cannot run, or null when it is fresh. */
export function staleReason(dist?: string, root?: string): string | null;
/** The URL of bundle entry `name` when the bundle is fresh, otherwise `fallback`. */
export function entryUrl(name: 'server', fallback: string, dist?: string): string;
/**
 * Runs the command line: dist/main.cjs (with a code cache of its own) when fresh, else `fallback`;
 * says which ran and what became of the cache. `options` are for tests.
 */
export function runMain(
  fallback: string,
  dist?: string,
  options?: { cacheDir?: string; cacheAfterMs?: number },
): Promise<'sources' | 'no cache' | 'cache rejected' | 'cache accepted'>;
