// Turning user-supplied instance settings (env values, API bodies) into validated InstanceConfig.
import { InvalidInstanceConfigError } from './errors.ts';
import type { InstanceConfig } from './types.ts';

/** An InstanceConfig with every default filled in and the URL normalised. */
export interface ResolvedInstanceConfig {
  id: string;
  url: string;
  headers: Record<string, string>;
  weight: number;
  labels: Record<string, string>;
  maxJobs: number;
}

const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Validates one instance and fills its defaults; throws InvalidInstanceConfigError naming the field. */
export function resolveInstanceConfig(
  config: InstanceConfig,
  defaults: { maxJobs: number },
  field = 'instance',
): ResolvedInstanceConfig {
  const { url, headers } = normaliseUrl(config.url, `${field}.url`);
  const id = config.id ?? new URL(url).host;
  if (!ID_PATTERN.test(id)) {
    throw new InvalidInstanceConfigError(`${field}.id`, `'${id}' must be 1-128 of A-Z a-z 0-9 . _ : @ -`);
  }
  const weight = config.weight ?? 1;
  if (!Number.isFinite(weight) || weight <= 0) {
    throw new InvalidInstanceConfigError(`${field}.weight`, `must be a positive number, got ${weight}`);
  }
  const maxJobs = config.maxJobs ?? defaults.maxJobs;
  if (!Number.isInteger(maxJobs) || maxJobs < 1) {
    throw new InvalidInstanceConfigError(`${field}.maxJobs`, `must be a positive integer, got ${maxJobs}`);
  }
  for (const [name, value] of Object.entries(config.headers ?? {})) {
    if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new InvalidInstanceConfigError(`${field}.headers`, `invalid header '${name}'`);
    }
  }
  for (const [name, value] of Object.entries(config.labels ?? {})) {
    if (typeof value !== 'string') {
      throw new InvalidInstanceConfigError(`${field}.labels`, `label '${name}' must be a string`);
    }
  }
  return {
    id,
    url,
    headers: { ...headers, ...config.headers },
    weight,
    labels: { ...config.labels },
    maxJobs,
  };
}

/**
 * Normalises a ComfyUI address: adds `http://` to bare `host:port`, drops a trailing slash, and turns
 * `user:pass@` credentials into a Basic Authorization header (fetch refuses URLs with credentials).
 */
export function normaliseUrl(raw: string, field = 'url'): { url: string; headers: Record<string, string> } {
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new InvalidInstanceConfigError(field, 'a URL is required');
  }
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw.trim()) ? raw.trim() : `http://${raw.trim()}`;
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new InvalidInstanceConfigError(field, `'${raw}' is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidInstanceConfigError(field, `'${raw}' must use http or https`);
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new InvalidInstanceConfigError(field, `'${raw}' must not have a query or fragment`);
  }
  const headers: Record<string, string> = {};
  if (parsed.username !== '' || parsed.password !== '') {
    const user = decodeURIComponent(parsed.username);
    const pass = decodeURIComponent(parsed.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    parsed.username = '';
    parsed.password = '';
  }
  const url = parsed.toString().replace(/\/+$/, '');
  return { url, headers };
}

/**
 * Reads the instance list from environment-style values: `COMFYUI_URLS` (comma list) then
 * `COMFYUI_HOST_1..N` (stops at the first gap). Duplicate URLs are rejected.
 */
export function parseInstanceList(env: Record<string, string | undefined>): InstanceConfig[] {
  const out: InstanceConfig[] = [];
  const seen = new Map<string, string>();
  const push = (raw: string, field: string): void => {
    const { url, headers } = normaliseUrl(raw, field);
    const previous = seen.get(url);
    if (previous !== undefined) {
      throw new InvalidInstanceConfigError(field, `'${url}' is already listed in ${previous}`);
    }
    seen.set(url, field);
    out.push(Object.keys(headers).length > 0 ? { url, headers } : { url });
  };
  const list = env.COMFYUI_URLS;
  if (list !== undefined && list.trim() !== '') {
    list
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '')
      .forEach((entry) => {
        push(entry, 'COMFYUI_URLS');
      });
  }
  for (let i = 1; ; i++) {
    const value = env[`COMFYUI_HOST_${i}`];
    if (value === undefined || value.trim() === '') break;
    push(value, `COMFYUI_HOST_${i}`);
  }
  return out;
}

/** Parses `8188-8191`, `8188,8190` or a mix into a list of distinct ports. */
export function parsePortList(value: string, field = 'COMFYUI_MANAGED_PORTS'): number[] {
  const ports: number[] = [];
  for (const part of value.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
    const [from, to] = range ? [Number(range[1]), Number(range[2])] : [Number(part), Number(part)];
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to > 65535 || from > to) {
      throw new InvalidInstanceConfigError(field, `'${part}' is not a port or port range (1-65535)`);
    }
    if (to - from > 1024) throw new InvalidInstanceConfigError(field, `range '${part}' is too large`);
    for (let port = from; port <= to; port++) {
      if (ports.includes(port)) throw new InvalidInstanceConfigError(field, `port ${port} is listed twice`);
      ports.push(port);
    }
  }
  if (ports.length === 0) throw new InvalidInstanceConfigError(field, 'no port given');
  return ports;
}

/** Splits a command line into argv like a POSIX shell would for quotes and backslashes (no expansion). */
export function splitCommand(command: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < command.length && '"\\$`'.includes(command[i + 1]!))
        current += command[++i];
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inArg = true;
    } else if (ch === '\\' && i + 1 < command.length) {
      current += command[++i];
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (quote !== null) throw new InvalidInstanceConfigError('COMFYUI_COMMAND', 'unterminated quote');
  if (inArg) args.push(current);
  if (args.length === 0) throw new InvalidInstanceConfigError('COMFYUI_COMMAND', 'empty command');
  return args;
}
