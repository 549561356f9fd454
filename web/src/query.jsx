// Read-only SQL over the published tables (the same reader `sluice query`
// uses: one statement, a read, only the project's relations), with its
// result as a table and as a bar or line chart; the URL holds the SQL, so a
// query can be shared.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from './api.js';
import { ErrorBox } from './components.jsx';
import { cell, count, duration } from './format.js';
import { navigate } from './main.jsx';

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/;
const TEMPORAL = /^(DATE|TIMESTAMP)/;

export function Query({ params }) {
  const [sql, setSql] = useState(params.sql || 'select * from _sluice.publications limit 20');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async (text = sql) => {
    setBusy(true);
    setError(null);
    const t0 = performance.now();
    try {
      const r = await api('/api/v1/query', { method: 'POST', body: { sql: text, limit: 5000 } });
      setResult({ ...r, ms: performance.now() - t0 });
    } catch (e) {
      setResult(null);
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  // A shared URL runs its query when opened.
  useEffect(() => {
    if (params.sql) {
      setSql(params.sql);
      run(params.sql);
    }
  }, [params.sql]);
  const submit = (e) => {
    e?.preventDefault();
    if (params.sql === sql) run(sql);
    else navigate('query', { sql, chart: params.chart || '' });
  };
  return (
    <section>
      <h1>Query</h1>
      <form onSubmit={submit}>
        <textarea
          id="sql"
          data-search
          rows="6"
          spellcheck={false}
          value={sql}
          onInput={(e) => setSql(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit(e);
          }}
          aria-label="SQL"
        />
        <div class="toolbar">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Running…' : 'Run (Ctrl+Enter)'}
          </button>
          <span class="muted small">One read-only statement over the published tables and _sluice.*.</span>
          {result && (
            <span class="muted small" id="query-stats">
              {count(result.rows.length)} rows{result.truncated ? ` (first ${count(result.max_rows)})` : ''} in{' '}
              {duration(result.ms)}
            </span>
          )}
        </div>
      </form>
      <ErrorBox error={error} />
      {result && <Chart result={result} kind={params.chart || ''} params={params} />}
      {result && (
        <div class="scroll">
          <table class="grid data" id="query-result">
            <thead>
              <tr>
                {result.columns.map((c, i) => (
                  <th key={i} title={result.types[i]}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {result.rows.map((row, n) => (
                <tr key={n}>
                  {row.map((v, i) => {
                    const text = cell(v);
                    return (
                      <td key={i} class={text === null ? 'null' : ''}>
                        {text === null ? 'null' : text}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// A chart of the first column (x) against every numeric column after it.
function Chart({ result, kind, params }) {
  const box = useRef(null);
  const ys = result.types.map((t, i) => (i > 0 && NUMERIC.test(t) ? i : -1)).filter((i) => i > 0);
  const xTime = TEMPORAL.test(result.types[0] || '');
  const xNum = NUMERIC.test(result.types[0] || '');
  useEffect(() => {
    if (!kind || !box.current || ys.length === 0 || result.rows.length === 0) return undefined;
    const labels = result.rows.map((r) => cell(r[0]));
    const x = result.rows.map((r, n) =>
      xTime ? Date.parse(r[0]) / 1000 : xNum && kind === 'line' ? Number(r[0]) : n,
    );
    const data = [x, ...ys.map((i) => result.rows.map((r) => (r[i] === null ? null : Number(r[i]))))];
    const styles = getComputedStyle(document.documentElement);
    const palette = ['--c1', '--c2', '--c3', '--c4', '--c5'].map((v) => styles.getPropertyValue(v).trim());
    const fg = styles.getPropertyValue('--fg').trim();
    const grid = styles.getPropertyValue('--line').trim();
    const bars = kind === 'bar' ? uPlot.paths.bars({ size: [0.7, 60] }) : undefined;
    const axis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
    const plot = new uPlot(
      {
        width: box.current.clientWidth || 800,
        height: 320,
        scales: {
          x: kind === 'bar' ? { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } : { time: xTime },
        },
        axes: [
          {
            ...axis,
            values: xTime || (xNum && kind === 'line') ? undefined : (u, splits) => splits.map((s) => labels[s] ?? ''),
          },
          axis,
        ],
        series: [
          { label: result.columns[0] },
          ...ys.map((i, n) => ({
            label: result.columns[i],
            stroke: palette[n % palette.length],
            fill: kind === 'bar' ? palette[n % palette.length] + '99' : undefined,
            width: kind === 'bar' ? 0 : 2,
            paths: bars,
            points: { show: kind !== 'bar' },
          })),
        ],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [result, kind]);
  if (ys.length === 0) return null;
  const set = (chart) => navigate('query', { ...params, chart });
  return (
    <div class="panel">
      <div class="toolbar">
        <span>Chart:</span>
        {[
          ['', 'none'],
          ['bar', 'bar'],
          ['line', 'line'],
        ].map(([k, label]) => (
          <button type="button" class={kind === k ? 'active' : ''} onClick={() => set(k)} key={k}>
            {label}
          </button>
        ))}
        <span class="muted small">
          x: {result.columns[0]}; y: {ys.map((i) => result.columns[i]).join(', ')}
        </span>
      </div>
      <div ref={box} id="chart" />
    </div>
  );
}
