// Runs: the latest runs, a runs × assets status grid, a form to start a run
// (with the plan's preview first), and one run's tasks as a Gantt chart with
// each attempt's log.
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { useApi, useRunEvents, useThrottled, LiveBadge, ErrorBox, Loading, Status, AssetLink, RunLink } from './components.jsx';
import { ago, count, duration, when } from './format.js';
import { navigate } from './main.jsx';

const GRID_RUNS = 20;

function runMs(r) {
  if (!r.started_at) return null;
  const end = r.ended_at ? Date.parse(r.ended_at) : Date.now();
  return end - Date.parse(r.started_at);
}

function trigger(r) {
  const args = r.args || {};
  return args.trigger || (args.select && args.select.length ? args.select.join(' ') : '');
}

export function Runs() {
  // Live events refresh the list as runs start and end; a slow poll covers
  // the time a stream is down.
  const { data: runs, error, reload } = useApi('/api/v1/runs?limit=100', 15000);
  // A run of thousands of tasks sends thousands of events: a reload a second at most.
  const refresh = useThrottled(reload, 1000);
  const live = useRunEvents(() => refresh());
  const [details, setDetails] = useState({});
  // The grid: each of the latest runs' tasks (a run's tasks never change once it ended).
  useEffect(() => {
    if (!runs) return;
    for (const r of runs.slice(0, GRID_RUNS)) {
      const known = details[r.id];
      if (known && known.status === r.status && r.ended_at) continue;
      api('/api/v1/runs/' + r.id)
        .then((d) => setDetails((all) => ({ ...all, [r.id]: d })))
        .catch(() => {});
    }
  }, [runs]);
  return (
    <section>
      <h1>
        Runs <LiveBadge state={live} />
      </h1>
      <StartRun onStarted={reload} />
      <ErrorBox error={error} />
      {!runs && !error && <Loading what="runs" />}
      {runs && runs.length === 0 && <p class="muted">No runs yet.</p>}
      {runs && runs.length > 0 && (
        <>
          <h2>Status grid</h2>
          <Grid runs={runs.slice(0, GRID_RUNS)} details={details} />
          <h2>Latest runs</h2>
          <table class="grid" id="runs">
            <thead>
              <tr>
                <th>Run</th>
                <th>Command</th>
                <th>Status</th>
                <th>Started</th>
                <th>Took</th>
                <th>Trigger</th>
                <th>Summary</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <RunLink id={r.id} />
                  </td>
                  <td>{r.command}</td>
                  <td>
                    <Status value={r.status} />
                  </td>
                  <td title={when(r.started_at)}>{ago(r.started_at)}</td>
                  <td>{duration(runMs(r))}</td>
                  <td class="small">{trigger(r)}</td>
                  <td class="small">{r.summary}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

function Grid({ runs, details }) {
  const assets = new Set();
  for (const r of runs) for (const t of details[r.id]?.tasks || []) assets.add(t.asset);
  const names = [...assets].sort();
  const cell = (run, asset) => {
    const tasks = (details[run.id]?.tasks || []).filter((t) => t.asset === asset);
    if (!tasks.length) return null;
    const last = tasks[tasks.length - 1];
    return last;
  };
  const ordered = [...runs].reverse();
  return (
    <div class="scroll">
      <table class="status-grid" id="run-grid">
        <thead>
          <tr>
            <th />
            {ordered.map((r) => (
              <th key={r.id}>
                <a href={'#/runs/' + r.id}>{r.id}</a>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {names.map((asset) => (
            <tr key={asset}>
              <th>{asset.startsWith('export:') ? asset : <AssetLink name={asset} />}</th>
              {ordered.map((r) => {
                const t = cell(r, asset);
                return (
                  <td key={r.id}>
                    {t && (
                      <a
                        href={'#/runs/' + r.id + '?task=' + encodeURIComponent(asset)}
                        class={'sq s-' + t.status}
                        title={`${asset} in run ${r.id}: ${t.status}${t.reason ? ' (' + t.reason + ')' : ''}`}
                      />
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function StartRun({ onStarted }) {
  const [select, setSelect] = useState('');
  const [full, setFull] = useState(false);
  const [partition, setPartition] = useState('');
  const [backfill, setBackfill] = useState(false);
  const [plan, setPlan] = useState(null);
  const [message, setMessage] = useState(null);
  const body = () => {
    const b = { select: select.split(/\s+/).filter(Boolean), full_refresh: full };
    if (partition) b.partition = partition;
    return b;
  };
  const runBody = () => {
    const b = body();
    if (backfill && partition) b.backfill = true;
    return b;
  };
  const preview = async (e) => {
    e.preventDefault();
    setMessage(null);
    try {
      setPlan(await api('/api/v1/plan', { method: 'POST', body: body() }));
    } catch (err) {
      setPlan(null);
      setMessage({ ok: false, text: err.message });
    }
  };
  const start = async () => {
    try {
      const r = await api('/api/v1/runs', { method: 'POST', body: runBody() });
      setMessage({ ok: true, text: `Run ${r.id} started.` });
      setPlan(null);
      onStarted();
      navigate('runs/' + r.id);
    } catch (err) {
      setMessage({ ok: false, text: err.message });
    }
  };
  const acting = plan ? plan.tasks.filter((t) => t.action !== 'skip') : [];
  return (
    <form class="panel" onSubmit={preview} id="start-run">
      <div class="toolbar">
        <input
          value={select}
          onInput={(e) => {
            setSelect(e.target.value);
            setPlan(null);
          }}
          placeholder="selectors, e.g. stops+ tag:daily (empty: everything)"
          aria-label="Selectors"
          size="40"
        />
        <input
          value={partition}
          onInput={(e) => {
            setPartition(e.target.value);
            setPlan(null);
          }}
          placeholder="partition or A..B (backfill)"
          aria-label="Partition"
        />
        <label>
          <input
            type="checkbox"
            checked={full}
            onChange={(e) => {
              setFull(e.target.checked);
              setPlan(null);
            }}
          />{' '}
          full refresh
        </label>
        <label title="A run over a range of partitions, recorded as a backfill; it resumes where it stopped">
          <input
            type="checkbox"
            checked={backfill}
            disabled={!partition}
            onChange={(e) => setBackfill(e.target.checked)}
            aria-label="Backfill"
          />{' '}
          backfill
        </label>
        <button type="submit">Preview</button>
        {plan && (
          <button type="button" class="primary" onClick={start}>
            Start run
          </button>
        )}
      </div>
      {message && <div class={message.ok ? 'notice' : 'error'}>{message.text}</div>}
      {plan && (
        <div class="plan" id="plan">
          <b>{acting.length}</b> of {plan.tasks.length} tasks would run:
          <ul>
            {plan.tasks.map((t) => (
              <li key={t.asset + (t.partition || '')} class={t.action === 'skip' ? 'muted' : ''}>
                <AssetLink name={t.asset} /> — {t.action}: {t.reason}
              </li>
            ))}
          </ul>
        </div>
      )}
    </form>
  );
}

export function RunPage({ id, params }) {
  const [running, setRunning] = useState(true);
  const { data: run, error, reload } = useApi('/api/v1/runs/' + id, running ? 5000 : 0);
  useEffect(() => {
    if (run && run.ended_at) setRunning(false);
  }, [run]);
  // Each of this run's events refreshes it at once (the poll is the fallback).
  const refresh = useThrottled(reload, 500);
  const live = useRunEvents((type, e) => {
    if (type === 'missed' || String(e.run_id) === String(id)) refresh();
  });
  const task = params.task || '';
  const cancel = async () => {
    try {
      await api('/api/v1/runs/' + id + '/cancel', { method: 'POST' });
      reload();
    } catch (e) {
      alert(e.message);
    }
  };
  return (
    <section>
      <h1>
        Run {id} {run && <Status value={run.status} />} {running && <LiveBadge state={live} />}
      </h1>
      <ErrorBox error={error} />
      {!run && !error && <Loading what={'run ' + id} />}
      {run && (
        <>
          <p class="lead">
            {run.command} · started {when(run.started_at)}
            {run.ended_at ? ' · took ' + duration(runMs(run)) : ' · running'}
            {run.trigger ? ' · trigger: ' + run.trigger : ''}
            {run.summary ? ' · ' + run.summary : ''}
            {!run.ended_at && (
              <button class="small" onClick={cancel}>
                Cancel
              </button>
            )}
          </p>
          <Gantt run={run} selected={task} />
          {task && <TaskLog id={id} asset={task} />}
        </>
      )}
    </section>
  );
}

function Gantt({ run, selected }) {
  const t0 = Date.parse(run.started_at);
  const tasks = run.tasks || [];
  let end = run.ended_at ? Date.parse(run.ended_at) : Date.now();
  for (const t of tasks) if (t.ended_at) end = Math.max(end, Date.parse(t.ended_at));
  const span = Math.max(1, end - t0);
  const pct = (ms) => `${Math.max(0, Math.min(100, (ms / span) * 100))}%`;
  return (
    <table class="grid gantt" id="gantt">
      <thead>
        <tr>
          <th>Task</th>
          <th>Status</th>
          <th class="bar-col">
            0 — {duration(span)}
          </th>
          <th>Took</th>
          <th class="num">Rows</th>
          <th>Why</th>
        </tr>
      </thead>
      <tbody>
        {tasks.map((t) => {
          const s = t.started_at ? Date.parse(t.started_at) - t0 : 0;
          const e = t.ended_at ? Date.parse(t.ended_at) - t0 : t.started_at ? Date.now() - t0 : 0;
          const key = t.asset + '/' + (t.partition || '') + '/' + t.attempt;
          const href = '#/runs/' + run.id + '?task=' + encodeURIComponent(t.asset);
          return (
            <tr key={key} class={selected === t.asset ? 'current' : ''}>
              <td>
                <a href={href}>{t.asset}</a>
                {t.partition && <span class="muted small"> [{t.partition}]</span>}
                {t.attempt > 1 && <span class="muted small"> attempt {t.attempt}</span>}
              </td>
              <td>
                <Status value={t.status} />
              </td>
              <td class="bar-col">
                {t.started_at && (
                  <div class="track">
                    <div
                      class={'bar s-' + t.status}
                      style={{ left: pct(s), width: `max(2px, calc(${pct(e - s)}))` }}
                      title={`${duration(e - s)} from ${duration(s)}`}
                    />
                  </div>
                )}
              </td>
              <td>{t.started_at && t.ended_at ? duration(e - s) : ''}</td>
              <td class="num">{count(t.rows)}</td>
              <td class="small">
                {t.reason}
                {t.error && <div class="error-text">{t.error}</div>}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function TaskLog({ id, asset }) {
  const { data, error } = useApi('/api/v1/runs/' + id + '/log?' + query({ asset }));
  return (
    <div class="panel" id="task-log">
      <h2>Log of {asset}</h2>
      <ErrorBox error={error} />
      {data &&
        data.logs.map((l) => (
          <div key={l.attempt}>
            <div class="muted small">attempt {l.attempt}</div>
            <pre class="log">{l.log}</pre>
          </div>
        ))}
      {data && data.logs.length === 0 && <p class="muted">No log for this task.</p>}
    </div>
  );
}
