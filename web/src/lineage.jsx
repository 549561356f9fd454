// The lineage graph: laid out by elk (layered, left to right) in a web
// worker, so the page stays responsive on large projects; drawn as SVG with
// pan (drag) and zoom (wheel); a click selects an asset and lights its
// upstream and downstream, "Focus" keeps only those, a double click opens it.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import ELK from 'elkjs/lib/elk-api.js';
import { useApi, ErrorBox, Loading, AssetLink, Kind } from './components.jsx';
import { navigate } from './main.jsx';

const NODE_H = 26;
const CHAR_W = 7.2;

let elk = null;
function layoutEngine() {
  if (!elk) elk = new ELK({ workerUrl: '/ui/elk-worker.js' });
  return elk;
}

// Every node reachable from `start` along `next` (start excluded).
function reach(start, next) {
  const seen = new Set();
  const stack = [start];
  while (stack.length) {
    const n = stack.pop();
    for (const m of next.get(n) || []) {
      if (!seen.has(m)) {
        seen.add(m);
        stack.push(m);
      }
    }
  }
  return seen;
}

// The assets that feed one column of `asset` (empty when none is chosen).
function useColumnSources(asset, column) {
  const { data } = useApi(
    asset && column ? '/api/v1/lineage?columns=true&asset=' + encodeURIComponent(asset) : '',
  );
  return useMemo(() => {
    const entry = data?.columns?.[asset];
    const c = entry?.columns.find((x) => x.column === column);
    return new Set((c?.sources || []).map((s) => s.asset));
  }, [data, asset, column]);
}

// Column lineage on demand: the focused asset's columns and what feeds each.
function ColumnPanel({ asset, column, params }) {
  const [open, setOpen] = useState(!!column);
  const { data, error } = useApi(
    open ? '/api/v1/lineage?columns=true&asset=' + encodeURIComponent(asset) : '',
  );
  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)} id="show-columns">
        Column lineage of {asset}
      </button>
    );
  }
  const entry = data?.columns?.[asset];
  const pick = (c) => navigate('lineage', { ...params, column: c === column ? '' : c });
  return (
    <div class="panel" id="column-lineage">
      <b>Columns of {asset}</b>
      {entry?.unknown && <div class="muted small">Not fully known: {entry.unknown}</div>}
      <ErrorBox error={error} />
      {!data && !error && <Loading what="column lineage" />}
      {entry && (
        <table class="grid">
          <tbody>
            {entry.columns.map((c) => (
              <tr key={c.column} class={c.column === column ? 'current' : ''}>
                <td class="mono">
                  <button type="button" class="link" onClick={() => pick(c.column)} data-column={c.column}>
                    {c.column}
                  </button>
                </td>
                <td class="small">
                  {c.sources.length === 0 && !c.unknown && (
                    <span class="muted">{entry.root ? 'its data' : 'no column (constants, count(*))'}</span>
                  )}
                  {c.sources.map((s, i) => (
                    <span key={s.asset + s.column}>
                      {i > 0 && ', '}
                      <a href={'#/lineage?focus=' + encodeURIComponent(s.asset)}>{s.asset}</a>.{s.column}
                    </span>
                  ))}
                  {c.unknown && <div class="muted">unknown: {c.unknown}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function Lineage({ params }) {
  const { data, error } = useApi('/api/v1/lineage');
  const focus = params.focus || '';
  const only = params.only === '1';
  const [layout, setLayout] = useState(null);
  const [layoutError, setLayoutError] = useState(null);
  const [search, setSearch] = useState('');
  const [view, setView] = useState({ x: 20, y: 20, k: 1 });
  const svg = useRef(null);

  const graph = useMemo(() => {
    if (!data) return null;
    const up = new Map();
    const down = new Map();
    for (const [a, b] of data.edges) {
      if (!down.has(a)) down.set(a, []);
      down.get(a).push(b);
      if (!up.has(b)) up.set(b, []);
      up.get(b).push(a);
    }
    return { nodes: data.nodes, edges: data.edges, up, down };
  }, [data]);

  const lit = useMemo(() => {
    if (!graph || !focus) return null;
    return { up: reach(focus, graph.up), down: reach(focus, graph.down) };
  }, [graph, focus]);

  // Lay out what is shown (all, or the focused asset's family).
  useEffect(() => {
    if (!graph) return;
    let live = true;
    const keep = (name) => !only || !lit || name === focus || lit.up.has(name) || lit.down.has(name);
    const nodes = graph.nodes.filter((n) => keep(n.name));
    const names = new Set(nodes.map((n) => n.name));
    const edges = graph.edges.filter(([a, b]) => names.has(a) && names.has(b));
    const started = performance.now();
    setLayout(null);
    layoutEngine()
      .layout({
        id: 'root',
        layoutOptions: {
          'elk.algorithm': 'layered',
          'elk.direction': 'RIGHT',
          'elk.layered.spacing.nodeNodeBetweenLayers': '48',
          'elk.spacing.nodeNode': '10',
          'elk.edgeRouting': 'POLYLINE',
          // Large graphs: the fast placement (the default's network simplex
          // grows steeply past a few hundred nodes).
          'elk.layered.thoroughness': nodes.length > 300 ? '1' : '7',
          ...(nodes.length > 300 ? { 'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF' } : {}),
        },
        children: nodes.map((n) => ({
          id: n.name,
          width: Math.max(60, n.name.length * CHAR_W + 34),
          height: NODE_H,
        })),
        edges: edges.map(([a, b], i) => ({ id: 'e' + i, sources: [a], targets: [b] })),
      })
      .then((result) => {
        if (!live) return;
        const kinds = Object.fromEntries(graph.nodes.map((n) => [n.name, n.kind]));
        setLayout({ ...result, kinds, ms: Math.round(performance.now() - started) });
        setLayoutError(null);
      })
      .catch((e) => live && setLayoutError(e));
    return () => {
      live = false;
    };
  }, [graph, only, focus && only ? focus : '']);

  function fit() {
    if (!layout || !svg.current) return;
    const box = svg.current.getBoundingClientRect();
    const k = Math.min(1.5, (box.width - 40) / layout.width, (box.height - 40) / layout.height);
    setView({ k, x: 20, y: 20 });
  }
  // Once laid out: center the focused node, or fit the whole graph in view.
  useEffect(() => {
    if (!layout || !svg.current) return;
    if (!focus) {
      fit();
      return;
    }
    const n = layout.children.find((c) => c.id === focus);
    if (!n) return;
    const box = svg.current.getBoundingClientRect();
    setView((v) => ({ ...v, x: box.width / 2 - (n.x + n.width / 2) * v.k, y: box.height / 2 - (n.y + n.height / 2) * v.k }));
  }, [layout, focus]);

  const drag = useRef(null);
  const onDown = (e) => {
    if (e.button !== 0) return;
    drag.current = { x: e.clientX, y: e.clientY, view };
  };
  const onMove = (e) => {
    const d = drag.current;
    if (!d) return;
    setView({ ...d.view, x: d.view.x + e.clientX - d.x, y: d.view.y + e.clientY - d.y });
  };
  const onUp = () => {
    drag.current = null;
  };
  const onWheel = (e) => {
    e.preventDefault();
    const box = svg.current.getBoundingClientRect();
    const px = e.clientX - box.left;
    const py = e.clientY - box.top;
    setView((v) => {
      const k = Math.min(4, Math.max(0.05, v.k * Math.exp(-e.deltaY * 0.0015)));
      return { k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k };
    });
  };
  const select = (name) => navigate('lineage', { ...params, focus: name === focus ? '' : name });
  const find = (e) => {
    e.preventDefault();
    const q = search.toLowerCase();
    const hit = graph?.nodes.find((n) => n.name === q) || graph?.nodes.find((n) => n.name.includes(q));
    if (hit) select(hit.name);
  };

  const feeding = useColumnSources(focus, params.column || '');
  const state = (name) => {
    if (feeding.has(name)) return 'feeds';
    if (!lit) return '';
    if (name === focus) return 'focus';
    if (lit.up.has(name)) return 'up';
    if (lit.down.has(name)) return 'down';
    return 'dim';
  };

  return (
    <section class="lineage-page">
      <h1>Lineage</h1>
      <form class="toolbar" onSubmit={find}>
        <input
          data-search
          type="search"
          placeholder="Find an asset  ( / )"
          value={search}
          onInput={(e) => setSearch(e.target.value)}
          aria-label="Find an asset"
        />
        <label>
          <input
            type="checkbox"
            checked={only}
            disabled={!focus}
            onChange={(e) => navigate('lineage', { ...params, only: e.target.checked ? '1' : '' })}
          />{' '}
          Focus: only the selected asset's upstream and downstream
        </label>
        <button type="button" onClick={fit}>
          Fit
        </button>
        {layout && (
          <span class="muted small" id="lineage-stats">
            {layout.children.length} assets, {layout.edges.length} edges, laid out in {layout.ms} ms
          </span>
        )}
      </form>
      {focus && graph && (
        <div class="focus-bar">
          <AssetLink name={focus} /> {' '}
          <Kind value={graph.nodes.find((n) => n.name === focus)?.kind || ''} /> · {lit?.up.size || 0}{' '}
          upstream, {lit?.down.size || 0} downstream
          <ColumnPanel asset={focus} column={params.column || ''} params={params} key={focus} />
        </div>
      )}
      <ErrorBox error={error || layoutError} />
      {!layout && !error && !layoutError && <Loading what="the graph" />}
      <svg
        ref={svg}
        class="graph"
        id="lineage-graph"
        onMouseDown={onDown}
        onMouseMove={onMove}
        onMouseUp={onUp}
        onMouseLeave={onUp}
        onWheel={onWheel}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="arrow" />
          </marker>
        </defs>
        {layout && (
          <g transform={`translate(${view.x},${view.y}) scale(${view.k})`}>
            {layout.edges.map((e) => {
              const s = e.sections?.[0];
              if (!s) return null;
              const pts = [s.startPoint, ...(s.bendPoints || []), s.endPoint];
              const [a] = e.sources;
              const [b] = e.targets;
              // On the focused asset's paths: upstream edges end at it or
              // an upstream asset, downstream ones start at it or a downstream one.
              const on =
                lit &&
                (((a === focus || lit.up.has(a)) && (b === focus || lit.up.has(b))) ||
                  ((a === focus || lit.down.has(a)) && lit.down.has(b)));
              return (
                <polyline
                  key={e.id}
                  class={'edge' + (lit ? (on ? ' lit' : ' dim') : '')}
                  points={pts.map((p) => `${p.x},${p.y}`).join(' ')}
                  marker-end="url(#arrow)"
                />
              );
            })}
            {layout.children.map((n) => (
              <g
                key={n.id}
                class={`node kind-${layout.kinds[n.id]} ${state(n.id)}`}
                transform={`translate(${n.x},${n.y})`}
                onClick={(e) => {
                  e.stopPropagation();
                  select(n.id);
                }}
                onDblClick={() => navigate('assets/' + encodeURIComponent(n.id))}
                data-asset={n.id}
              >
                <rect width={n.width} height={n.height} rx="5" />
                <text x="10" y={NODE_H / 2 + 4}>
                  {n.id}
                </text>
              </g>
            ))}
          </g>
        )}
      </svg>
      <p class="muted small">
        Drag to pan, wheel to zoom, click to select, double-click to open. Colours: source, seed, model, view.
      </p>
    </section>
  );
}
