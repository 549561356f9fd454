// Pieces every page uses: loading data, errors, status badges, links.
import { useEffect, useState, useCallback } from 'preact/hooks';
import { api, NeedsToken } from './api.js';

// Loads `path` (again whenever it changes, and every `every` ms when set).
export function useApi(path, every = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (!path) return undefined;
    let live = true;
    api(path)
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((error) => live && setState((s) => ({ data: s.data, error, loading: false })));
    return () => {
      live = false;
    };
  }, [path, tick]);
  useEffect(() => {
    if (!every) return undefined;
    const id = setInterval(reload, every);
    return () => clearInterval(id);
  }, [every, reload]);
  return { ...state, reload };
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
