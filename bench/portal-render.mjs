// portal-render.mjs - time to first render of the job list in headless
// Chromium (used by bench/portal.py). Prints one JSON line of figures.
//   PORTAL_URL=... TOKEN=... USER=... RUNS=5 SIZE=20 node bench/portal-render.mjs
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

const BASE = process.env.PORTAL_URL;
const RUNS = Number(process.env.RUNS || 5);
const SIZE = Number(process.env.SIZE || 20);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const host = new URL(BASE).hostname;
await ctx.addCookies(['token', 'user', 'admin'].map((name) => ({
  name, value: { token: process.env.TOKEN, user: process.env.USER_NAME, admin: 'true' }[name], domain: host, path: '/',
})));
const page = await ctx.newPage();
const runs = [];
for (let i = 0; i < RUNS; i++) {
  await page.goto('about:blank');
  await page.goto(`${BASE}/#/jobs?refresh=off${SIZE !== 20 ? `&size=${SIZE}` : ''}`);
  await page.waitForSelector('table.jobs tbody tr');
  const r = await page.evaluate(() => {
    const mark = performance.getEntriesByName('pai-jobs-rendered')[0];
    const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v2/jobs?'));
    return {
      render_ms: mark ? mark.startTime : null,
      api_ms: api.length ? api[0].duration : null,
      rows: document.querySelectorAll('table.jobs tbody tr').length,
      summary: document.querySelector('.toolbar .muted')?.textContent,
    };
  });
  runs.push(r);
}
await browser.close();
const renders = runs.map((r) => r.render_ms).filter((x) => x !== null);
console.log(JSON.stringify({
  size: SIZE, runs: runs.length, cold_ms: renders[0], warm_median_ms: renders.slice(1).sort((a, b) => a - b)[Math.floor((renders.length - 1) / 2)],
  max_ms: Math.max(...renders), api_ms: runs.map((r) => Math.round(r.api_ms)), rows: runs[0].rows, summary: runs[0].summary,
}));
