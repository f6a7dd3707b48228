// Types of bin/bundle.js (plain JavaScript, so the command starts without type stripping).
/** The repository root. */
export const ROOT: string;
/** Why the bundle in `dist` cannot run, or null when it is fresh. */
export function staleReason(dist?: string, root?: string): string | null;
/** The URL of bundle entry `name` when the bundle is fresh, otherwise `fallback`. */
export function entryUrl(name: 'main' | 'server', fallback: string, dist?: string): string;
