// The SSRF guard shared by input fetches and webhook deliveries: which addresses a caller-named URL may
// reach. Addresses are checked after DNS resolution, at connect time (the socket connects to the very
// address that was checked, so DNS rebinding has no gap), and again on every redirect hop.
import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { Agent } from 'undici';
import { InputInvalidError, UrlForbiddenError } from './errors.ts';

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;
/** A dns.lookup-compatible function (injectable so tests can resolve names to chosen addresses). */
export type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** Cloud metadata endpoints: refused even when their range is allow-listed, unless listed one by one. */
const METADATA_ADDRESSES = ['169.254.169.254', 'fd00:ec2::254', '169.254.170.2', '100.100.100.200'];

type AllowEntry =
  | { kind: 'cidr'; range: [ipaddr.IPv4 | ipaddr.IPv6, number]; exact: string | undefined }
  | { kind: 'host'; host: string; wildcard: boolean };

function normalize(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  // process() turns IPv4-mapped IPv6 (::ffff:127.0.0.1) into the IPv4 it really is.
  return ipaddr.process(address.replace(/^\[|\]$/g, ''));
}

function parseAllowEntry(entry: string): AllowEntry {
  const text = entry.trim().toLowerCase();
  if (text.includes('/')) {
    try {
      const range = ipaddr.parseCIDR(text);
      const full = range[0].kind() === 'ipv4' ? 32 : 128;
      return {
        kind: 'cidr',
        range,
        exact: range[1] === full ? normalize(range[0].toString()).toString() : undefined,
      };
    } catch {
      throw new InputInvalidError(`allowPrivate entry ${JSON.stringify(entry)} is not a valid CIDR`);
    }
  }
  if (ipaddr.isValid(text.replace(/^\[|\]$/g, ''))) {
    const address = normalize(text);
    return {
      kind: 'cidr',
      range: [address, address.kind() === 'ipv4' ? 32 : 128],
      exact: address.toString(),
    };
  }
  if (!/^(\*\.)?[a-z0-9.-]+$/.test(text))
    throw new InputInvalidError(`allowPrivate entry ${JSON.stringify(entry)} is not a host, IP or CIDR`);
  return text.startsWith('*.')
    ? { kind: 'host', host: text.slice(1), wildcard: true }
    : { kind: 'host', host: text, wildcard: false };
}

/** Options of an SSRF guard. */
export interface SsrfGuardOptions {
  /** Hosts (`cdn.internal`, `*.corp`), IPs or CIDRs whose private addresses may be reached. */
  allowPrivate: string[];
  /** DNS resolution; defaults to `dns.lookup`. */
  lookup?: LookupFunction;
}

/** Decides which URLs and addresses a caller-supplied URL may reach. */
export class SsrfGuard {
  readonly allowPrivate: readonly string[];
  readonly #entries: AllowEntry[];
  readonly #resolve: LookupFunction;
  readonly #metadata = METADATA_ADDRESSES.map((a) => normalize(a).toString());

  constructor(options: SsrfGuardOptions) {
    this.allowPrivate = options.allowPrivate.map((e) => e.trim()).filter((e) => e !== '');
    this.#entries = this.allowPrivate.map(parseAllowEntry);
    this.#resolve = options.lookup ?? dns.lookup;
  }

  /** Why an address is refused for `hostname`, or undefined when it may be reached. */
  refusal(address: string, hostname?: string): string | undefined {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = normalize(address);
    } catch {
      return `unparseable address ${address}`;
    }
    const text = ip.toString();
    if (this.#metadata.includes(text)) {
      // Only an exact entry opens a metadata address: a broad range such as 169.254.0.0/16 does not.
      const listed = this.#entries.some((e) => e.kind === 'cidr' && e.exact === text);
      return listed ? undefined : `${text} is a cloud metadata address`;
    }
    const range = ip.range();
    if (range === 'unicast') return undefined;
    if (this.#allowedByRange(ip) || (hostname !== undefined && this.#allowedByHost(hostname)))
      return undefined;
    return `${text} is a ${range} address`;
  }

  /** Throws UrlForbiddenError unless `address` may be reached. */
  checkAddress(address: string, hostname?: string): void {
    const reason = this.refusal(address, hostname);
    if (reason !== undefined)
      throw new UrlForbiddenError(`refused to connect to ${hostname ?? address}: ${reason}`, {
        host: hostname ?? address,
      });
  }

  /** Checks the parts of a URL that need no DNS: scheme, no embedded credentials, literal IP hosts. */
  checkUrlShape(input: string | URL): URL {
    let url: URL;
    try {
      url = typeof input === 'string' ? new URL(input) : input;
    } catch {
      throw new InputInvalidError(`not a valid URL: ${redactUrl(String(input))}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UrlForbiddenError(`only http and https URLs may be fetched, not ${url.protocol}`);
    if (url.username !== '' || url.password !== '')
      throw new InputInvalidError('URLs with embedded credentials are refused; pass credentials separately');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host)) this.checkAddress(host, host);
    return url;
  }

  /** Resolves a URL's host and checks every address (a pre-flight; connections are checked again). */
  async checkUrl(input: string | URL): Promise<URL> {
    const url = this.checkUrlShape(input);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host)) return url;
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) => {
      this.#resolve(host, { all: true }, (err, result) =>
        err ? reject(err) : resolve(result as LookupAddress[]),
      );
    }).catch((err: unknown) => {
      throw new UrlForbiddenError(`cannot resolve ${host}: ${(err as Error).message}`, { host });
    });
    for (const a of addresses) this.checkAddress(a.address, host);
    return url;
  }

  /** A dns.lookup replacement for sockets: resolves, refuses if any address is forbidden. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.#resolve(hostname, { ...options, all: true }, (err, result) => {
      if (err) return callback(err, options.all ? [] : '');
      const addresses = result as LookupAddress[];
      for (const a of addresses) {
        const reason = this.refusal(a.address, hostname);
        if (reason !== undefined) {
          return callback(
            new UrlForbiddenError(`refused to connect to ${hostname}: ${reason}`, { host: hostname }),
            options.all ? [] : '',
          );
        }
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (first === undefined)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      return callback(null, first.address, first.family);
    });
  };

  /** An undici dispatcher whose connections go only to addresses this guard allows. */
  createAgent(options: { connectTimeoutMs?: number; connections?: number } = {}): Agent {
    return new Agent({
      connect: { lookup: this.lookup as never, timeout: options.connectTimeoutMs ?? 10_000 },
      connections: options.connections ?? 16,
      keepAliveTimeout: 4_000,
    });
  }

  #allowedByRange(ip: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    return this.#entries.some(
      (e) => e.kind === 'cidr' && e.range[0].kind() === ip.kind() && ip.match(e.range),
    );
  }

  #allowedByHost(hostname: string): boolean {
    const host = hostname.toLowerCase().replace(/\.$/, '');
    return this.#entries.some(
      (e) => e.kind === 'host' && (e.wildcard ? host.endsWith(e.host) : host === e.host),
    );
  }
}

/** Creates the SSRF guard used for input URLs and webhook URLs. */
export function createSsrfGuard(options: SsrfGuardOptions): SsrfGuard {
  return new SsrfGuard(options);
}

/** True when `url` is http(s) and every address its host resolves to may be reached. */
export async function isSafeUrl(url: string, options: SsrfGuardOptions): Promise<boolean> {
  try {
    await new SsrfGuard(options).checkUrl(url);
    return true;
  } catch {
    return false;
  }
}

/** Strips credentials, query and fragment from a URL for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol === 'data:') return `data:${url.slice(5, Math.min(url.indexOf(',') >>> 0, 64))},…`;
    const query = u.search === '' ? '' : '?…';
    return `${u.protocol}//${u.host}${u.pathname}${query}`;
  } catch {
    return url.startsWith('data:') ? 'data:…' : '<invalid url>';
  }
}
