// The fetch log: every download each source made (status, bytes, time,
// where it is kept in the raw lake); URLs arrive with secrets redacted.
import { useApi, ErrorBox, Loading, AssetLink } from './components.jsx';
import { query } from './api.js';
import { ago, bytes, duration, when } from './format.js';
import { navigate } from './main.jsx';

export function Fetches({ params }) {
  const source = params.source || '';
  const { data: assets } = useApi('/api/v1/assets');
  const { data, error } = useApi('/api/v1/fetches?' + query({ source, limit: 500 }), 10000);
  const sources = assets ? assets.filter((a) => a.kind === 'source').map((a) => a.name) : [];
  return (
    <section>
      <h1>Fetches</h1>
      <div class="toolbar">
        <select value={source} onChange={(e) => navigate('fetches', { source: e.target.value })} aria-label="Source">
          <option value="">every source</option>
          {sources.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
        {data && <span class="muted">{data.length} fetches (newest first, at most 500)</span>}
      </div>
      <ErrorBox error={error} />
      {!data && !error && <Loading what="the fetch log" />}
      {data && (
        <table class="grid" id="fetches">
          <thead>
            <tr>
              <th>When</th>
              <th>Source</th>
              <th>URL</th>
              <th>Status</th>
              <th class="num">Bytes</th>
              <th>Took</th>
              <th>Try</th>
              <th>Object</th>
            </tr>
          </thead>
          <tbody>
            {data.map((f) => (
              <tr key={f.id}>
                <td title={when(f.time)}>{ago(f.time)}</td>
                <td>
                  <AssetLink name={f.source} />
                  {f.partition && <span class="muted small"> [{f.partition}]</span>}
                </td>
                <td class="mono small wrap">{f.url}</td>
                <td>
                  {f.error ? (
                    <span class="badge bad" title={f.error}>
                      {f.status || 'error'}
                    </span>
                  ) : (
                    <span class="badge ok">{f.status || 'ok'}</span>
                  )}
                  {f.error && <div class="error-text small">{f.error}</div>}
                </td>
                <td class="num">{bytes(f.bytes)}</td>
                <td>{duration(f.duration_ms)}</td>
                <td class="small">
                  {f.attempt ? (f.attempt > 1 ? <b>retry {f.attempt - 1}</b> : '1st') : ''}
                  {f.page > 1 ? <span class="muted"> · page {f.page}</span> : ''}
                </td>
                <td class="mono small" title={f.object}>
                  {(f.sha256 || '').slice(0, 12)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
