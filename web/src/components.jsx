// Pieces every page uses: loading data, errors, status badges, links.
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import { api, NeedsToken, subscribe } from './api.js';

// Loads `path` (again whenever it changes, and every `every` ms when set).
// What was loaded for another path is never shown for this one (a page that
// moves from one asset to the next starts empty, not with the last one's data).
export function useApi(path, every = 0) {
  const [state, setState] = useState({ path: null, data: null, error: null });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (!path) return undefined;
    let live = true;
    api(path)
      .then((data) => live && setState({ path, data, error: null }))
      .catch(
        (error) =>
          live && setState((s) => ({ path, data: s.path === path ? s.data : null, error })),
      );
    return () => {
      live = false;
    };
  }, [path, tick]);
  useEffect(() => {
    if (!every) return undefined;
    const id = setInterval(reload, every);
    return () => clearInterval(id);
  }, [every, reload]);
  const current = state.path === path;
  return {
    data: current ? state.data : null,
    error: current ? state.error : null,
    loading: !current,
    reload,
  };
}

export function ErrorBox({ error }) {
  if (!error) return null;
  if (error instanceof NeedsToken) {
    return (
      <div class="error" role="alert">
        This server needs a token. Set one with the <b>Token</b> button above.
      </div>
    );
  }
  return (
    <div class="error" role="alert">
      {error.message}
    </div>
  );
}

export function Loading({ what }) {
  return <div class="muted">Loading {what}…</div>;
}

const STATUS_CLASS = {
  success: 'ok',
  published: 'ok',
  pass: 'ok',
  skipped: 'skip',
  unchanged: 'skip',
  running: 'run',
  queued: 'run',
  planned: 'skip',
  failed: 'bad',
  fail: 'bad',
  error: 'bad',
  upstream_failed: 'bad',
  cancelled: 'warn',
  warn: 'warn',
  rolled_back: 'warn',
  superseded: 'skip',
};

export function Status({ value }) {
  if (!value) return <span class="badge skip">never run</span>;
  return <span class={'badge ' + (STATUS_CLASS[value] || 'skip')}>{value.replace('_', ' ')}</span>;
}

export function AssetLink({ name }) {
  return <a href={'#/assets/' + encodeURIComponent(name)}>{name}</a>;
}

export function RunLink({ id }) {
  return <a href={'#/runs/' + id}>#{id}</a>;
}

export function Kind({ value }) {
  return <span class={'kind kind-' + value}>{value}</span>;
}

// `fn` at most once per `ms` (the last call wins, run at the end of the window).
export function useThrottled(fn, ms) {
  const timer = useRef(null);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  }, [ms]);
}

// Calls onEvent(type, event) for each live run or task event while mounted;
// returns 'live' or 'retrying' (the page then relies on its slower poll).
export function useRunEvents(onEvent) {
  const [state, setState] = useState('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => subscribe((type, e) => handler.current(type, e), setState), []);
  return state;
}

export function LiveBadge({ state }) {
  return (
    <span class={'live ' + state} id="live" title="Run and task events arrive as they happen">
      {state === 'live' ? '● live' : '○ ' + state}
    </span>
  );
}
