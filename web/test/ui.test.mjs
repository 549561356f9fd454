// Drives the web UI in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core) against a running `sluice serve`:
//
//   node ui.test.mjs BASE_URL [--token T] [--shots DIR] [--lineage-only N]
//
// Every page must render real data from the project; a run is started from
// the Runs page (with its plan preview) and followed to its end; the page
// must log no error (a CSP refusal or a failed request included). With
// --lineage-only N, only the lineage page is opened, and it must show N
// assets. With --token, the page must first ask for a token, then use it.
// Exits non-zero with the failing step's name.
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const base = args[0];
const shotsAt = args.indexOf('--shots');
const shots = shotsAt > 0 ? args[shotsAt + 1] : '';
const lineageAt = args.indexOf('--lineage-only');
const lineageOnly = lineageAt > 0 ? Number(args[lineageAt + 1]) : 0;
const tokenAt = args.indexOf('--token');
const token = tokenAt > 0 ? args[tokenAt + 1] : '';
if (!base) {
  console.error('usage: node ui.test.mjs BASE_URL [--token T] [--shots DIR] [--lineage-only N]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('console', (m) => {
  if (m.type() === 'error') problems.push('console error: ' + m.text());
});
page.on('requestfailed', (r) => {
  // A page left mid-stream aborts its live events: not a failure.
  if (r.url().endsWith('/api/v1/events') && r.failure()?.errorText === 'net::ERR_ABORTED') return;
  problems.push('request failed: ' + r.url() + ' ' + r.failure()?.errorText);
});
page.setDefaultTimeout(20000);

let step = '';
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};
const shot = async (name) => {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png` });
};
const rowsOf = (selector) => page.locator(selector + ' tbody tr').count();

try {
  if (lineageOnly) {
    step = `lineage of ${lineageOnly} assets`;
    const t0 = Date.now();
    await page.goto(base + '/#/lineage');
    await page.waitForSelector('#lineage-stats', { timeout: 120000 });
    const ms = Date.now() - t0;
    const nodes = await page.locator('#lineage-graph g.node').count();
    check(nodes === lineageOnly, `the graph shows ${nodes} assets, expected ${lineageOnly}`);
    // Still responsive: finding an asset selects it, a click on another too.
    await page.fill('input[aria-label="Find an asset"]', 'm1999');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /m1999/.test(document.querySelector('.focus-bar')?.textContent || ''));
    await page.locator('#lineage-graph g.node[data-asset="m1998"]').dispatchEvent('click');
    await page.waitForFunction(() => /m1998/.test(document.querySelector('.focus-bar')?.textContent || ''));
    const stats = await page.locator('#lineage-stats').innerText();
    console.log(`lineage: ${nodes} assets opened in ${ms} ms (${stats})`);
    await shot('lineage-large');
  } else {
    if (token) {
      step = 'a server with tokens asks for one';
      await page.goto(base + '/');
      await page.waitForSelector('.error');
      check(/needs a token/.test(await page.locator('.error').innerText()), 'no token prompt');
      problems.splice(0, problems.length, ...problems.filter((p) => !/status of 401/.test(p)));
      await page.evaluate((t) => localStorage.setItem('sluice.token', t), token);
    }
    step = 'catalog';
    await page.goto(base + '/');
    await page.waitForSelector('#catalog tbody tr');
    const assets = await rowsOf('#catalog');
    check(assets >= 5, `the catalog lists ${assets} assets`);
    const first = await page.locator('#catalog tbody tr').first().innerText();
    check(/success/.test(first), 'the first asset shows no status: ' + first);
    await shot('catalog');
    await page.keyboard.press('/');
    await page.keyboard.type('stop_dep');
    await page.waitForFunction(() => document.querySelectorAll('#catalog tbody tr').length === 1);
    check(/search|q=stop_dep/.test(page.url()), 'the search is not in the URL: ' + page.url());

    step = 'asset page';
    await page.click('#catalog a:text-is("stop_departures")');
    await page.waitForSelector('#schema tbody tr');
    const schema = await page.locator('#schema').innerText();
    check(/stop_id/.test(schema) && /BIGINT/.test(schema), 'the schema lacks stop_id BIGINT: ' + schema);
    const checks = await page.locator('#checks').innerText();
    check(/unique\(stop_id,route_id\)/.test(checks) && /pass/.test(checks), 'checks without results: ' + checks);
    await shot('asset');

    step = 'pause and resume a schedule';
    await page.goto(base + '/#/assets/gtfs_stops');
    await page.waitForSelector('#schema td:text-is("stop_lat")');
    await page.click('#schedule-control button:text-is("Pause")');
    await page.waitForSelector('#schedule-control .badge:text-is("paused")');
    await page.click('#schedule-control button:text-is("Resume")');
    await page.waitForSelector('#schedule-control button:text-is("Pause")');
    await page.goto(base + '/#/assets/stop_departures');
    await page.waitForSelector('#schema tbody tr');

    step = 'data preview';
    await page.click('button[role=tab]:text-is("Data")');
    await page.waitForSelector('#data tbody tr');
    check((await rowsOf('#data')) === 50, 'the preview does not show a page of 50 rows');
    await page.click('#data th:text-is("departures_per_week")');
    await page.waitForFunction(() => location.hash.includes('sort=departures_per_week'));
    await page.click('#data th:has-text("departures_per_week")');
    await page.waitForFunction(() => location.hash.includes('sort=-departures_per_week'));
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#data tbody tr td:nth-child(6)')].map((td) => Number(td.textContent));
      return cells.length > 1 && cells.every((v, i) => i === 0 || cells[i - 1] >= v);
    });
    await page.selectOption('select[aria-label="Filter column"]', 'route_id');
    await page.fill('input[aria-label="Filter value"]', '20');
    await page.click('button:text-is("Add filter")');
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#data tbody tr td:nth-child(3)')].map((td) => td.textContent);
      return cells.length > 0 && cells.every((v) => v === '20');
    });
    // The CSV of what is shown, fetched with the token.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv-download')]);
    const csv = await readFile(await download.path(), 'utf8');
    check(/^stop_id,stop_name,route_id/.test(csv), 'the CSV download: ' + csv.slice(0, 200));
    // Fields split with quotes honoured (a stop name may hold a comma).
    const fields = (line) => [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].map((m) => m[1]);
    const rows = csv.trim().split('\n').slice(1);
    check(rows.length > 0 && rows.every((line) => fields(line)[2] === '20'), 'the CSV ignores the filter: ' + csv.slice(0, 300));
    await shot('data');

    step = 'versions';
    await page.click('button[role=tab]:text-is("Versions")');
    await page.waitForSelector('#versions tbody tr');
    check(/current/.test(await page.locator('#versions').innerText()), 'no current version shown');

    step = 'lineage';
    await page.goto(base + '/#/lineage');
    await page.waitForSelector('#lineage-stats');
    const nodes = await page.locator('#lineage-graph g.node').count();
    check(nodes === assets, `the graph shows ${nodes} of ${assets} assets`);
    await page.click('#lineage-graph g.node[data-asset="trips_enriched"]');
    await page.waitForSelector('.focus-bar');
    const bar = await page.locator('.focus-bar').innerText();
    check(/4 upstream, 2 downstream/.test(bar), 'the focus bar says: ' + bar);
    // Column lineage on demand: what feeds trips_enriched.route_short_name.
    await page.click('#show-columns');
    await page.waitForSelector('#column-lineage button[data-column="route_short_name"]');
    const columns = await page.locator('#column-lineage').innerText();
    check(/gtfs_routes\.route_short_name/.test(columns), 'column lineage: ' + columns);
    await page.click('#column-lineage button[data-column="route_short_name"]');
    await page.waitForSelector('#lineage-graph g.node.feeds[data-asset="gtfs_routes"]');
    await shot('lineage');

    step = 'runs: preview and start a run';
    await page.goto(base + '/#/runs');
    await page.waitForSelector('#runs tbody tr');
    await page.waitForSelector('#live:text-is("● live")');
    await page.waitForSelector('#run-grid .sq');
    await page.fill('input[aria-label="Selectors"]', 'gtfs_stops+');
    await page.check('#start-run label:has-text("full refresh") input');
    await page.click('#start-run button:text-is("Preview")');
    await page.waitForSelector('#plan');
    const plan = await page.locator('#plan').innerText();
    check(/gtfs_stops/.test(plan) && /stop_departures/.test(plan), 'the plan preview: ' + plan);
    await page.click('#start-run button:text-is("Start run")');
    await page.waitForFunction(() => /#\/runs\/\d+/.test(location.hash));
    step = 'runs: follow the run to its end';
    await page.waitForFunction(
      () => {
        const h1 = document.querySelector('h1')?.textContent || '';
        return /success|failed|cancelled/.test(h1) && document.querySelectorAll('#gantt tbody tr').length > 0;
      },
      null,
      { timeout: 120000 },
    );
    const heading = await page.locator('h1').innerText();
    check(/success/.test(heading), 'the run did not succeed: ' + heading);
    const gantt = await page.locator('#gantt').innerText();
    check(/gtfs_stops/.test(gantt) && /stop_departures/.test(gantt), 'the Gantt lacks its tasks: ' + gantt);
    check((await page.locator('#gantt .bar').count()) >= 2, 'the Gantt has no bars');
    await page.click('#gantt a:text-is("gtfs_stops")');
    await page.waitForSelector('#task-log pre.log');
    check(/check unique\(stop_id\): pass/.test(await page.locator('#task-log').innerText()), 'the task log');
    await shot('run');

    step = 'fetches';
    await page.goto(base + '/#/fetches');
    await page.waitForSelector('#fetches tbody tr');
    check(/stops\.txt/.test(await page.locator('#fetches').innerText()), 'the fetch log lacks stops.txt');

    step = 'query';
    const sql = 'select route_short_name::varchar as route, trips from route_service_span order by trips desc';
    await page.goto(base + '/#/query');
    await page.fill('#sql', sql);
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('#query-result tbody tr');
    check((await rowsOf('#query-result')) === 15, 'the query result does not have 15 rows');
    check(page.url().includes('sql='), 'the SQL is not in the URL');
    await page.click('button:text-is("bar")');
    await page.waitForSelector('#chart canvas');
    await shot('query');
    // A shared URL runs its query when opened.
    const shared = page.url();
    await page.goto('about:blank');
    await page.goto(shared);
    await page.waitForSelector('#query-result tbody tr');
    // A write is refused with the reader's own message.
    await page.fill('#sql', 'drop table gtfs_stops');
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('.error');
    check(/read|refused|not allowed|only/i.test(await page.locator('.error').innerText()), 'a write was not refused');
    problems.splice(0, problems.length, ...problems.filter((p) => !/status of 403/.test(p)));

    step = 'dark theme';
    await page.locator('h1').click();
    await page.keyboard.press('t');
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await page.goto(base + '/#/assets');
    await page.waitForSelector('#catalog tbody tr');
    await shot('catalog-dark');
  }
  step = 'no errors in the page';
  check(problems.length === 0, problems.join('\n'));
  console.log('ui: ok');
  await browser.close();
} catch (e) {
  console.error(`ui: FAILED at "${step}": ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  if (shots) await page.screenshot({ path: `${shots}/failure.png` }).catch(() => {});
  await browser.close();
  process.exit(1);
}
