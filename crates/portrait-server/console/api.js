// The operator API (/admin/v1) and /metrics, with the operator token from sessionStorage.
// A failure is an ApiError carrying the API's own `message` (shown to the operator as is).

const TOKEN = 'portrait.operator-token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN),
  set: (t) => sessionStorage.setItem(TOKEN, t),
  clear: () => sessionStorage.removeItem(TOKEN),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls `/admin/v1<path>`; resolves to the JSON answer (or null), rejects with an ApiError. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token.get() || ''}`, ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(`/admin/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, 'network', `The server could not be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (data && typeof data.ErrorCode === 'number' && data.ErrorCode !== 0) {
    // The vendor envelope: the path is not served, i.e. the operator API is off on this node.
    throw new ApiError(res.status, 'operator_api_off',
      'The operator API is off on this server: set [operator] token (or token_file) in its configuration and restart it.');
  }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, e?.code || `http_${res.status}`,
      e?.message || `${res.status} ${res.statusText || 'error'}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }
  return data;
}

export const enc = encodeURIComponent;

/** One scrape of /metrics: Map of `name{labels}` → value, plus the time it was taken. */
export async function scrape() {
  const res = await fetch('/metrics', { cache: 'no-store' });
  if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, `/metrics answered ${res.status}`);
  const samples = [];
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { at: performance.now(), samples };
}
