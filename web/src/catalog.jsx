// The asset catalog: every asset with its status, last publication, size,
// version and checks; search and filters live in the URL (shareable).
import { useMemo } from 'preact/hooks';
import { useApi, ErrorBox, Loading, Status, AssetLink, Kind } from './components.jsx';
import { ago, count, when } from './format.js';
import { navigate } from './main.jsx';

export function Catalog({ params }) {
  const { data, error } = useApi('/api/v1/assets', 10000);
  const search = params.q || '';
  const kind = params.kind || '';
  const status = params.status || '';
  const set = (key, value) => navigate('assets', { ...params, [key]: value });
  const rows = useMemo(() => {
    if (!data) return [];
    const q = search.toLowerCase();
    return data.filter(
      (a) =>
        (!q ||
          a.name.toLowerCase().includes(q) ||
          (a.description || '').toLowerCase().includes(q) ||
          (a.tags || []).some((t) => t.toLowerCase().includes(q))) &&
        (!kind || a.kind === kind) &&
        (!status || (a.last_status || 'never') === status),
    );
  }, [data, search, kind, status]);
  const kinds = data ? [...new Set(data.map((a) => a.kind))].sort() : [];
  const statuses = data ? [...new Set(data.map((a) => a.last_status || 'never'))].sort() : [];
  return (
    <section>
      <h1>Assets</h1>
      <div class="toolbar">
        <input
          type="search"
          data-search
          placeholder="Search names, descriptions, tags  ( / )"
          value={search}
          onInput={(e) => set('q', e.target.value)}
          aria-label="Search assets"
        />
        <select value={kind} onChange={(e) => set('kind', e.target.value)} aria-label="Kind">
          <option value="">every kind</option>
          {kinds.map((k) => (
            <option value={k}>{k}</option>
          ))}
        </select>
        <select value={status} onChange={(e) => set('status', e.target.value)} aria-label="Status">
          <option value="">every status</option>
          {statuses.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
        {data && (
          <span class="muted">
            {rows.length} of {data.length}
          </span>
        )}
      </div>
      <ErrorBox error={error} />
      {!data && !error && <Loading what="assets" />}
      {data && (
        <table class="grid" id="catalog">
          <thead>
            <tr>
              <th>Asset</th>
              <th>Kind</th>
              <th>Last run</th>
              <th>Published</th>
              <th class="num">Rows</th>
              <th>Version</th>
              <th>Checks</th>
              <th>Schedule</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.name}>
                <td>
                  <AssetLink name={a.name} />
                  {a.description && <div class="muted small">{a.description}</div>}
                </td>
                <td>
                  <Kind value={a.kind} />
                </td>
                <td>
                  <Status value={a.last_status} />
                </td>
                <td title={when(a.published?.published_at)}>
                  {a.published ? ago(a.published.published_at) : <span class="muted">never</span>}
                </td>
                <td class="num">{a.published ? count(a.published.rows) : ''}</td>
                <td class="mono">{a.published?.version || ''}</td>
                <td>{(a.checks || []).length || ''}</td>
                <td class="small">{a.schedule || ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
