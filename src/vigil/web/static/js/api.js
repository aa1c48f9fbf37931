// The HTTP API client. Every state-changing request carries the session's CSRF token in
// the X-CSRF-Token header (the session cookie alone is never enough for a write); errors
// come back in one JSON shape: {"error": {"code", "message", "details"}}.

let csrfToken = null;
let onUnauthorized = null;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function setCsrf(token) {
  csrfToken = token || null;
}

/** Called (once per burst) when a request comes back 401: the session is gone. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Build a path with query parameters (undefined/null/'' values are left out). */
export function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, String(x)));
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** `/api/cameras/<name>...` with the name encoded (names are validated server-side, but
 * nothing taken from a response is ever pasted into a URL unencoded). */
export function cam(name, rest = '') {
  return `/api/cameras/${encodeURIComponent(name)}${rest}`;
}

async function errorOf(res) {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  let details = null;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details ?? null;
    }
  } catch (_) { /* not JSON */ }
  return new ApiError(res.status, code, message, details);
}

/**
 * fetch() with the API's conventions. `body` (object) is sent as JSON. Returns the parsed
 * JSON (or null for 204), the Response when `raw` is set. Throws ApiError.
 */
export async function request(method, path, { body, raw = false, signal, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', signal, headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
  const res = await fetch(path, init);
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
export const put = (path, body, opts = {}) => request('PUT', path, { ...opts, body });
export const patch = (path, body, opts = {}) => request('PATCH', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);

/** ws:// or wss:// URL of an API path on this origin. */
export function wsUrl(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}
