// The UI's one way to the server: fetch with the saved token, JSON in and
// out, problem+json errors turned into Error(detail). A 401 asks for a token.
const TOKEN_KEY = 'sluice.token';

export class NeedsToken extends Error {}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export async function api(path, { method = 'GET', body, raw = false } = {}) {
  const headers = {};
  if (token()) headers.Authorization = 'Bearer ' + token();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new NeedsToken('this server needs a token');
  const type = response.headers.get('Content-Type') || '';
  const payload = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = typeof payload === 'object' ? payload.detail || payload.title : payload;
    const error = new Error(detail || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return raw ? { body: payload, headers: response.headers } : payload;
}

// Saves what `path` answers as a file, fetched with the token (a plain link
// would go without it).
export async function download(path, name) {
  const headers = {};
  if (token()) headers.Authorization = 'Bearer ' + token();
  const response = await fetch(path, { headers });
  if (!response.ok) {
    alert(`The download failed: HTTP ${response.status}`);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// "a=1&b=x y" from {a: 1, b: 'x y'}, skipping empty values.
export function query(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
  }
  return parts.join('&');
}

// Live run and task events (GET /api/v1/events, server-sent events) read
// through fetch, so that the token goes in a header as for every request.
// Each stream ends after a while and is resumed from the last event seen;
// on an error it is tried again after a pause. onState('live'|'retrying').
// Returns a function that stops it.
export function subscribe(onEvent, onState = () => {}) {
  let stopped = false;
  let last = '';
  let controller = null;
  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = {};
        if (token()) headers.Authorization = 'Bearer ' + token();
        if (last) headers['Last-Event-ID'] = last;
        const response = await fetch('/api/v1/events', { headers, signal: controller.signal });
        if (!response.ok || !response.body) throw new Error('HTTP ' + response.status);
        onState('live');
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let id = '';
            let type = 'message';
            let data = '';
            for (const line of frame.split('\n')) {
              if (line.startsWith('id: ')) id = line.slice(4);
              else if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (id) last = id;
            if (data) onEvent(type, JSON.parse(data));
          }
        }
        // The stream ended (as each does after a while): resume after the
        // server's retry pause, never in a tight loop.
        await new Promise((r) => setTimeout(r, 1000));
      } catch (e) {
        if (stopped) return;
        onState('retrying');
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
  };
  run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
