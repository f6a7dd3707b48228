// HTTP and SSE access to the gateway: every call carries the API key of this tab (sessionStorage),
// errors become ApiError with the v2 envelope's code, and the live stream is read with fetch
// (EventSource cannot send an Authorization header).
const KEY = 'comfy-gateway.api-key';

/** The API key of this tab's session, or null. */
export function apiKey() {
  return sessionStorage.getItem(KEY);
}

/** Keeps (or with null, forgets) the API key for this tab. */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** An HTTP error with the gateway's error code. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function headers(extra = {}) {
  const key = apiKey();
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

/** Listeners told when a call answers 401 (the key is wrong or gone). */
const unauthorized = new Set();
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {}
  const err = body?.error;
  if (res.status === 401) for (const fn of unauthorized) fn();
  return new ApiError(
    res.status,
    typeof err?.code === 'string' ? err.code : `http_${res.status}`,
    typeof err?.message === 'string' ? err.message : `HTTP ${res.status}`,
    err?.details ?? null,
  );
}

/** JSON request; throws ApiError on a non-2xx answer. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  });
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.json();
}

/** A same-origin file (an output) as an object URL; the caller revokes it. */
export async function blobUrl(url, signal) {
  const res = await fetch(url, { headers: headers(), signal });
  if (!res.ok) throw await failure(res);
  return URL.createObjectURL(await res.blob());
}

/** True when `url` points at this gateway (so it can be fetched with the key). */
export function sameOrigin(url) {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

/** Reads an SSE stream until it ends or `signal` aborts, calling onEvent(name, data) per event. */
export async function readStream(path, signal, onEvent) {
  const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal });
  if (!res.ok || !res.body) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      if (block.startsWith(':')) continue;
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      onEvent(event, data ? JSON.parse(data) : null);
    }
  }
}
