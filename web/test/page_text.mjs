// Prints the text of one element of a page of the web UI, once it shows,
// from headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core); for cases that check one thing a page says:
//
//   node page_text.mjs URL SELECTOR
//
// Exits non-zero when the element does not show within 20 s, or the page
// logs an error.
import { chromium } from 'playwright-core';

const [url, selector] = process.argv.slice(2);
if (!url || !selector) {
  console.error('usage: node page_text.mjs URL SELECTOR');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const problems = [];
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push('console error: ' + m.text());
  });
  await page.goto(url);
  const element = page.locator(selector);
  await element.waitFor({ timeout: 20000 });
  console.log((await element.innerText()).trim());
} catch (e) {
  problems.push(String(e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
