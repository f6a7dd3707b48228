// Per-request credentials for input URLs: header sets matched by URL pattern, applied per request hop
// (so a redirect to another host never carries them) and never logged.

/** Headers to send to URLs matching `urlPattern`. */
export interface UrlCredential {
  /** A URL prefix (`https://bucket.example.com/private/`), or a glob with `*` (`https://*.example.com/*`). */
  urlPattern: string;
  headers: Record<string, string>;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** The headers of the first credential whose pattern matches `url`, or undefined. */
export function credentialsFor(
  url: URL,
  credentials: UrlCredential[] | undefined,
): Record<string, string> | undefined {
  if (credentials === undefined) return undefined;
  const href = url.href;
  for (const c of credentials) {
    const matches = c.urlPattern.includes('*')
      ? globToRegExp(c.urlPattern).test(href)
      : href.startsWith(c.urlPattern);
    if (matches) return c.headers;
  }
  return undefined;
}
