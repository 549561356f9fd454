// Sluice's web UI: one page, hash routes, data from /api/v1 (DESIGN.md §4).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { setToken, token } from './api.js';
import { Catalog } from './catalog.jsx';
import { AssetPage } from './asset.jsx';
import { Lineage } from './lineage.jsx';
import { Runs, RunPage } from './runs.jsx';
import { Fetches } from './fetches.jsx';
import { Query } from './query.jsx';

// "#/assets/stops?tab=data" -> {parts: ['assets', 'stops'], params: {tab: 'data'}}
function parseHash() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = hash.split('?');
  const decode = (p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p; // a malformed escape in a hand-edited URL: taken as written
    }
  };
  const parts = path.split('/').filter(Boolean).map(decode);
  const params = Object.fromEntries(new URLSearchParams(search));
  return { parts, params };
}

export function navigate(path, params) {
  const search = params ? new URLSearchParams(params).toString() : '';
  location.hash = '#/' + path + (search ? '?' + search : '');
}

const NAV = [
  ['assets', 'Assets', 'a'],
  ['lineage', 'Lineage', 'l'],
  ['runs', 'Runs', 'r'],
  ['fetches', 'Fetches', 'f'],
  ['query', 'Query', 'q'],
];

function Page({ route }) {
  const [section = 'assets', id] = route.parts;
  // Keyed by what they show: moving to another asset or run starts afresh.
  if (section === 'assets' && id) return <AssetPage name={id} params={route.params} key={id} />;
  if (section === 'assets') return <Catalog params={route.params} />;
  if (section === 'lineage') return <Lineage params={route.params} />;
  if (section === 'runs' && id) return <RunPage id={id} params={route.params} key={id} />;
  if (section === 'runs') return <Runs params={route.params} />;
  if (section === 'fetches') return <Fetches params={route.params} />;
  if (section === 'query') return <Query params={route.params} />;
  return <div class="error">No page '{section}'.</div>;
}

function ThemeButton() {
  const [theme, setTheme] = useState(document.documentElement.dataset.theme || 'light');
  const flip = () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('sluice.theme', next);
    setTheme(next);
  };
  return (
    <button class="ghost" onClick={flip} title="Light or dark (t)" data-key="t">
      {theme === 'dark' ? '☀ Light' : '☾ Dark'}
    </button>
  );
}

function TokenButton() {
  const [has, setHas] = useState(!!token());
  const ask = () => {
    const value = prompt('API token (kept in this browser only; empty to forget it):', '');
    if (value === null) return;
    setToken(value.trim());
    setHas(!!value.trim());
    location.reload();
  };
  return (
    <button class="ghost" onClick={ask} title="The API token this browser sends">
      {has ? 'Token ✓' : 'Token'}
    </button>
  );
}

function App() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const onHash = () => setRoute(parseHash());
    addEventListener('hashchange', onHash);
    // Keyboard: g then a/l/r/f/q goes to a page; / focuses the page's search; t flips the theme.
    let g = false;
    const onKey = (e) => {
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '/') {
        const search = document.querySelector('[data-search]');
        if (search) {
          e.preventDefault();
          search.focus();
        }
        return;
      }
      if (e.key === 't') {
        document.querySelector('[data-key=t]')?.click();
        return;
      }
      if (g) {
        const hit = NAV.find((n) => n[2] === e.key);
        if (hit) navigate(hit[0]);
        g = false;
        return;
      }
      g = e.key === 'g';
    };
    addEventListener('keydown', onKey);
    return () => {
      removeEventListener('hashchange', onHash);
      removeEventListener('keydown', onKey);
    };
  }, []);
  const section = route.parts[0] || 'assets';
  return (
    <>
      <header>
        <a class="brand" href="#/assets">
          Sluice
        </a>
        <nav>
          {NAV.map(([path, label, key]) => (
            <a
              href={'#/' + path}
              class={section === path ? 'active' : ''}
              title={`${label} (g ${key})`}
              key={path}
            >
              {label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <TokenButton />
        <ThemeButton />
      </header>
      <main>
        <Page route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app'));
