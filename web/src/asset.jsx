// One asset: overview (schema, neighbours, checks and their latest
// results), versions (with rollback), its issue log, and a data preview
// with sort and filter through the dataset API.
import { useState } from 'preact/hooks';
import { api, download, query } from './api.js';
import { useApi, ErrorBox, Loading, Status, AssetLink, RunLink, Kind } from './components.jsx';
import { ago, bytes, count, when, cell } from './format.js';
import { navigate } from './main.jsx';

const TABS = [
  ['overview', 'Overview'],
  ['versions', 'Versions'],
  ['issues', 'Issues'],
  ['data', 'Data'],
];

export function AssetPage({ name, params }) {
  const tab = params.tab || 'overview';
  const { data: asset, error, reload } = useApi('/api/v1/assets/' + encodeURIComponent(name));
  const go = (t) => navigate('assets/' + encodeURIComponent(name), { tab: t });
  return (
    <section>
      <h1>
        {name} {asset && <Kind value={asset.kind} />} {asset && <Status value={asset.last_status} />}
      </h1>
      {asset?.description && <p class="lead">{asset.description}</p>}
      <ErrorBox error={error} />
      {!asset && !error && <Loading what={name} />}
      {asset && (
        <>
          <div class="tabs" role="tablist">
            {TABS.map(([key, label]) => (
              <button
                role="tab"
                class={tab === key ? 'active' : ''}
                aria-selected={tab === key}
                onClick={() => go(key)}
                key={key}
              >
                {label}
              </button>
            ))}
            <a class="tab-link" href={'#/lineage?focus=' + encodeURIComponent(name)}>
              Lineage →
            </a>
          </div>
          {tab === 'overview' && <Overview asset={asset} />}
          {tab === 'versions' && <Versions asset={asset} reload={reload} />}
          {tab === 'issues' && <Issues asset={asset} params={params} />}
          {tab === 'data' && <DataPreview asset={asset} params={params} />}
        </>
      )}
    </section>
  );
}

function Overview({ asset }) {
  const p = asset.published;
  const results = asset.check_results || [];
  const byName = Object.fromEntries(results.map((r) => [r.check, r]));
  return (
    <div class="cols">
      <div>
        <h2>Facts</h2>
        <dl class="facts">
          <dt>Published</dt>
          <dd title={when(p?.published_at)}>{p ? ago(p.published_at) : 'never'}</dd>
          <dt>Rows</dt>
          <dd>{p ? count(p.rows) : ''}</dd>
          <dt>Version</dt>
          <dd class="mono">{p?.version || ''}</dd>
          {asset.materialized && (
            <>
              <dt>Materialized</dt>
              <dd>{asset.materialized}</dd>
            </>
          )}
          <dt>Key</dt>
          <dd>{(asset.key || []).join(', ') || <span class="muted">none</span>}</dd>
          {asset.capture && (
            <>
              <dt>Change capture</dt>
              <dd id="capture">
                <Capture c={asset.capture} />
              </dd>
            </>
          )}
          <dt>Schedule</dt>
          <dd>
            {asset.schedule || <span class="muted">none</span>} <ScheduleControl asset={asset.name} />
          </dd>
          <dt>Upstream</dt>
          <dd>{list(asset.upstream)}</dd>
          <dt>Downstream</dt>
          <dd>{list(asset.downstream)}</dd>
        </dl>
        <h2>Schema</h2>
        <table class="grid" id="schema">
          <thead>
            <tr>
              <th>Column</th>
              <th>Type</th>
            </tr>
          </thead>
          <tbody>
            {(asset.schema || []).map((c) => (
              <tr key={c.name}>
                <td class="mono">{c.name}</td>
                <td class="mono muted">{c.type}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div>
        <h2>Checks</h2>
        {(asset.checks || []).length === 0 && <p class="muted">No checks.</p>}
        <table class="grid" id="checks">
          <tbody>
            {(asset.checks || []).map((name) => {
              const r = byName[name];
              return (
                <tr key={name}>
                  <td class="mono">{name}</td>
                  <td>{r ? <Status value={r.status} /> : <span class="muted">not run</span>}</td>
                  <td>
                    {r && r.failing_rows > 0 && <b>{count(r.failing_rows)} failing rows</b>}
                    {r && r.message && <div class="small">{r.message}</div>}
                    {r && r.sample && r.sample.length > 0 && (
                      <details>
                        <summary>sample</summary>
                        <pre>{JSON.stringify(r.sample, null, 1)}</pre>
                      </details>
                    )}
                  </td>
                  <td class="small muted">
                    {r && r.severity}
                    {r && r.run_id ? (
                      <>
                        {' · run '}
                        <RunLink id={r.run_id} />
                      </>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

// A captured table's slot: how much WAL the server keeps for it (a stalled
// slot fills the source's disk), and where the table's publication stands.
function Capture({ c }) {
  if (c.error) return <span class="error-text">slot {c.slot}: {c.error}</span>;
  if (!c.exists) return <span class="error-text">slot {c.slot} does not exist: the next run snapshots again</span>;
  return (
    <>
      slot <span class="mono">{c.slot}</span>: {bytes(c.lag_bytes)} of WAL held
      {c.wal_status !== 'reserved' && <b> ({c.wal_status})</b>}
      {c.active && <span class="muted"> · in use</span>}
      <div class="small muted">
        table read to <span class="mono">{c.table_lsn || '—'}</span>, server at{' '}
        <span class="mono">{c.server_lsn}</span>
      </div>
    </>
  );
}

// Pause or resume the asset's own schedule (operator); nothing when it has none.
function ScheduleControl({ asset }) {
  const { data, error, reload } = useApi('/api/v1/schedules');
  const [message, setMessage] = useState('');
  const mine = data && data.find((s) => s.asset === asset);
  if (error || !mine) return null;
  const flip = async () => {
    try {
      await api(`/api/v1/schedules/${encodeURIComponent(asset)}/${mine.paused ? 'resume' : 'pause'}`, {
        method: 'POST',
      });
      setMessage('');
      reload();
    } catch (e) {
      setMessage(e.message);
    }
  };
  return (
    <span id="schedule-control">
      {mine.paused ? <span class="badge warn">paused</span> : mine.next_tick && <span class="muted small">next {when(mine.next_tick)}</span>}
      <button class="small" onClick={flip}>
        {mine.paused ? 'Resume' : 'Pause'}
      </button>
      {message && <span class="error-text small"> {message}</span>}
    </span>
  );
}

function list(names) {
  if (!names || names.length === 0) return <span class="muted">none</span>;
  return names.map((n, i) => (
    <span key={n}>
      {i > 0 && ', '}
      <AssetLink name={n} />
    </span>
  ));
}

function Versions({ asset, reload }) {
  const [message, setMessage] = useState(null);
  const current = asset.published?.version;
  const rollback = async (version) => {
    if (!confirm(`Publish version ${version} of ${asset.name} again?`)) return;
    try {
      const r = await api('/api/v1/assets/' + encodeURIComponent(asset.name) + '/rollback', {
        method: 'POST',
        body: { to: version },
      });
      setMessage({ ok: true, text: `Rolled back to ${r.version || version}.` });
      reload();
    } catch (e) {
      setMessage({ ok: false, text: e.message });
    }
  };
  return (
    <>
      {message && <div class={message.ok ? 'notice' : 'error'}>{message.text}</div>}
      <table class="grid" id="versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>Status</th>
            <th class="num">Rows</th>
            <th>Run</th>
            <th>Built</th>
            <th>Published</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(asset.versions || []).map((v) => (
            <tr key={v.version + v.created_at} class={v.version === current ? 'current' : ''}>
              <td class="mono">
                {v.version}
                {v.version === current && <span class="badge ok">current</span>}
              </td>
              <td>
                <Status value={v.status} />
              </td>
              <td class="num">{count(v.rows)}</td>
              <td>{v.run_id ? <RunLink id={v.run_id} /> : ''}</td>
              <td title={when(v.created_at)}>{ago(v.created_at)}</td>
              <td title={when(v.published_at)}>{v.published_at ? ago(v.published_at) : ''}</td>
              <td>
                {v.version !== current && v.published_at && (
                  <button class="small" onClick={() => rollback(v.version)}>
                    Roll back to this
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Issues({ asset, params }) {
  const severity = params.severity || '';
  const type = params.issue_type || '';
  const path =
    '/api/v1/issues?' +
    query({ asset: asset.name, severity, issue_type: type, limit: 500 });
  const { data, error } = useApi(path);
  const set = (key, value) =>
    navigate('assets/' + encodeURIComponent(asset.name), { ...params, tab: 'issues', [key]: value });
  return (
    <>
      <div class="toolbar">
        <select value={severity} onChange={(e) => set('severity', e.target.value)} aria-label="Severity">
          <option value="">every severity</option>
          <option value="error">error</option>
          <option value="warning">warning</option>
          <option value="info">info</option>
        </select>
        <input
          placeholder="issue type"
          value={type}
          onChange={(e) => set('issue_type', e.target.value)}
          aria-label="Issue type"
        />
        {data && <span class="muted">{data.length} issues (newest first, at most 500)</span>}
      </div>
      <ErrorBox error={error} />
      {data && data.length === 0 && <p class="muted">No issues logged.</p>}
      {data && data.length > 0 && (
        <table class="grid" id="issues">
          <thead>
            <tr>
              <th>Logged</th>
              <th>Row</th>
              <th>Field</th>
              <th>Type</th>
              <th>Value</th>
              <th>Message</th>
              <th>Version</th>
            </tr>
          </thead>
          <tbody>
            {data.map((i, n) => (
              <tr key={n}>
                <td title={when(i.logged_at)}>{ago(i.logged_at)}</td>
                <td class="num">{i.record}</td>
                <td class="mono">{i.field}</td>
                <td>{i.issue_type}</td>
                <td class="mono">{cell(i.value)}</td>
                <td>{i.message}</td>
                <td class="mono small">{i.version_id}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

const OPS = [
  ['', '='],
  ['__ne', '≠'],
  ['__gt', '>'],
  ['__gte', '≥'],
  ['__lt', '<'],
  ['__lte', '≤'],
  ['__like', 'like'],
  ['__in', 'in'],
];

function DataPreview({ asset, params }) {
  const sort = params.sort || '';
  let filters = [];
  try {
    filters = params.filters ? JSON.parse(params.filters) : [];
    if (!Array.isArray(filters)) filters = [];
  } catch {
    filters = []; // a hand-edited URL: no filters rather than a broken page
  }
  const limit = 50;
  const page = Number(params.page || 0);
  const q = { _limit: limit, _offset: page * limit, _sort: sort };
  for (const [col, op, value] of filters) q[col + op] = value;
  const { data, error } = useApi('/api/v1/data/' + encodeURIComponent(asset.name) + '?' + query(q));
  const set = (changes) =>
    navigate('assets/' + encodeURIComponent(asset.name), { ...params, tab: 'data', ...changes });
  const [draft, setDraft] = useState({ col: '', op: '', value: '' });
  const columns = data?.columns || (asset.schema || []).map((c) => ({ name: c.name, type: c.type }));
  const sortBy = (name) =>
    set({ sort: sort === name ? '-' + name : sort === '-' + name ? '' : name, page: 0 });
  const addFilter = (e) => {
    e.preventDefault();
    if (!draft.col) return;
    set({ filters: JSON.stringify([...filters, [draft.col, draft.op, draft.value]]), page: 0 });
    setDraft({ col: '', op: '', value: '' });
  };
  const removeFilter = (i) =>
    set({ filters: JSON.stringify(filters.filter((_, n) => n !== i)), page: 0 });
  return (
    <>
      <form class="toolbar" onSubmit={addFilter}>
        <select value={draft.col} onChange={(e) => setDraft({ ...draft, col: e.target.value })} aria-label="Filter column">
          <option value="">filter on…</option>
          {columns.map((c) => (
            <option value={c.name}>{c.name}</option>
          ))}
        </select>
        <select value={draft.op} onChange={(e) => setDraft({ ...draft, op: e.target.value })} aria-label="Operator">
          {OPS.map(([op, label]) => (
            <option value={op}>{label}</option>
          ))}
        </select>
        <input
          value={draft.value}
          onInput={(e) => setDraft({ ...draft, value: e.target.value })}
          placeholder="value"
          aria-label="Filter value"
        />
        <button type="submit">Add filter</button>
        {filters.map(([col, op, value], i) => (
          <span class="chip" key={i}>
            {col} {OPS.find((o) => o[0] === op)?.[1]} {value}
            <button type="button" class="ghost" onClick={() => removeFilter(i)} aria-label="Remove filter">
              ×
            </button>
          </span>
        ))}
        <button
          type="button"
          class="link small"
          id="csv-download"
          onClick={() =>
            download(
              '/api/v1/data/' + encodeURIComponent(asset.name) + '?' + query({ ...q, _format: 'csv', _limit: 10000, _offset: '' }),
              asset.name + '.csv',
            )
          }
        >
          CSV
        </button>
      </form>
      <ErrorBox error={error} />
      {data && (
        <>
          <div class="scroll">
            <table class="grid data" id="data">
              <thead>
                <tr>
                  {columns.map((c) => (
                    <th key={c.name} onClick={() => sortBy(c.name)} class="sortable" title={c.type}>
                      {c.name}
                      {sort === c.name ? ' ▲' : sort === '-' + c.name ? ' ▼' : ''}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {data.rows.map((row, n) => (
                  <tr key={n}>
                    {columns.map((c) => {
                      const v = cell(row[c.name]);
                      return <td class={v === null ? 'null' : ''}>{v === null ? 'null' : v}</td>;
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="toolbar">
            <button disabled={page === 0} onClick={() => set({ page: page - 1 })}>
              ← Previous
            </button>
            <span class="muted">
              rows {count(page * limit + 1)}–{count(page * limit + data.rows.length)}
            </span>
            <button disabled={!data.more} onClick={() => set({ page: page + 1 })}>
              Next →
            </button>
          </div>
        </>
      )}
    </>
  );
}
