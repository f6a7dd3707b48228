// Per-request credentials for input URLs: header sets matched by URL pattern, applied per request hop
// (so a redirect to another host never carries them) and never logged. Patterns are matched on the
// parsed URL — scheme, host, port, then path — never on the raw text, so `*` cannot cross into the
// path, query or another host, and a prefix like `https://bucket.example.com` does not match
// `https://bucket.example.com.evil.test/`.

/** Headers to send to URLs matching `urlPattern`. */
export interface UrlCredential {
  /** A URL prefix (`https://bucket.example.com/private/`), or a glob with `*` (`https://*.example.com/*`). */
  urlPattern: string;
  headers: Record<string, string>;
}

interface ParsedPattern {
  protocol: string;
  host: RegExp;
  port: string;
  path: RegExp;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

const parsedPatterns = new Map<string, ParsedPattern | null>();

/** Splits a pattern into scheme, host glob, port and path glob; null when it is not a usable URL pattern. */
function parsePattern(pattern: string): ParsedPattern | null {
  const cached = parsedPatterns.get(pattern);
  if (cached !== undefined) return cached;
  let parsed: ParsedPattern | null = null;
  const m = /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(pattern);
  if (m) {
    const authority = (m[2] as string).toLowerCase();
    const hostPort = /^([a-z0-9.*-]+|\[[0-9a-f:.]+\])(?::(\d+))?$/.exec(authority);
    if (hostPort) {
      const protocol = `${(m[1] as string).toLowerCase()}:`;
      const defaultPort = protocol === 'https:' ? '443' : '80';
      const port = hostPort[2] && hostPort[2] !== defaultPort ? hostPort[2] : '';
      // In the host, `*` stands for characters of one or more labels, never `/`, `?`, `#` or `@`.
      const host = new RegExp(`^${escapeRegExp(hostPort[1] as string).replace(/\*/g, '[a-z0-9.-]*')}$`);
      const rawPath = m[3] ?? '/';
      // In the path, `*` stays in the path; a pattern without `*` is a prefix of the path.
      const path = rawPath.includes('*')
        ? new RegExp(`^${escapeRegExp(rawPath).replace(/\*/g, '.*')}$`)
        : new RegExp(`^${escapeRegExp(rawPath)}`);
      parsed = { protocol, host, port, path };
    }
  }
  if (parsedPatterns.size > 1000) parsedPatterns.clear();
  parsedPatterns.set(pattern, parsed);
  return parsed;
}

/** The headers of the first credential whose pattern matches `url` (scheme, host, port and path), or undefined. */
export function credentialsFor(
  url: URL,
  credentials: UrlCredential[] | undefined,
): Record<string, string> | undefined {
  if (credentials === undefined) return undefined;
  for (const c of credentials) {
    const p = parsePattern(c.urlPattern);
    if (p === null) continue;
    if (
      url.protocol === p.protocol &&
      url.port === p.port &&
      p.host.test(url.hostname.toLowerCase()) &&
      p.path.test(url.pathname)
    )
      return c.headers;
  }
  return undefined;
}
