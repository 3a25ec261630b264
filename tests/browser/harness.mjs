// harness.mjs - what the portal's browser tests share (portal.test.mjs,
// templates.test.mjs): the settings from the environment, one headless
// Chromium page, steps that print "ok - name" / "not ok - name", and the
// page helpers (navigation, login, waits).
//
//   PORTAL_URL=http://127.0.0.1:PORT ADMIN_USER=admin ADMIN_PASSWORD=... \
//   OUT=dir CHROMIUM=/usr/bin/chromium JOB_WAIT_MS=120000
//
// Drives Debian's /usr/bin/chromium with playwright-core. A step fails when
// it throws or when the page logged a console error or an uncaught page
// error that the step did not expect (tolerate(re)); a failed step saves a
// screenshot and does not stop the ones after it.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const BASE = (process.env.PORTAL_URL || '').replace(/\/$/, '');
export const ADMIN = process.env.ADMIN_USER || 'admin';
export const ADMIN_PW = process.env.ADMIN_PASSWORD || '';
export const OUT = process.env.OUT || 'portal-shots';
export const WAIT_MS = Number(process.env.JOB_WAIT_MS || 120000);
export const RUN = Date.now().toString(36).slice(-5);
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

if (!BASE) { console.log('not ok - PORTAL_URL is not set'); process.exit(1); }
fs.mkdirSync(OUT, { recursive: true });

const browser = await chromium.launch({ executablePath: EXE, headless: true, args: FLAGS });
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
export const page = await context.newPage();
page.setDefaultTimeout(15000);
let consoleErrors = [];
let tolerated = null; // RegExp of console errors the running step expects
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));

let passed = 0, failed = 0;
let namePrefix = '', shotPrefix = '';

// Names of the steps get prefix ("templates: "), failure screenshots shot ("templates-").
export function setPrefixes(prefix, shot) { namePrefix = prefix; shotPrefix = shot; }

// Console errors matching re do not fail the running step (a 4xx answer Chromium logs).
export function tolerate(re) { tolerated = re; }

export const shot = (name) => page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });

// Runs fn as one step; a string it returns makes the step a skip with that reason.
export async function step(name, fn) {
  consoleErrors = [];
  try {
    const skip = await fn();
    const errs = consoleErrors.filter((e) => !(tolerated && tolerated.test(e)));
    if (errs.length) throw new Error(`console errors: ${errs.slice(0, 3).join(' | ')}`);
    console.log(`ok - ${namePrefix}${name}${skip ? ` # SKIP ${skip}` : ''}`);
    passed++;
  } catch (e) {
    console.log(`not ok - ${namePrefix}${name}`);
    console.log(`  ${String(e.message || e).split('\n').slice(0, 6).join('\n  ')}`);
    failed++;
    await shot(`FAILED-${shotPrefix}${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => {});
  } finally {
    tolerated = null;
  }
}

// Closes the browser, prints the summary and exits (1 when a step failed).
export async function finish() {
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// A fresh load of the page each time (going to the same #hash would not reload).
export const go = async (hash) => {
  await page.goto('about:blank');
  await page.goto(`${BASE}/${hash}`);
  await page.waitForLoadState('domcontentloaded');
};
export const expectText = async (sel, re, timeout = 15000) => {
  await page.locator(sel).filter({ hasText: re }).first().waitFor({ timeout });
};
export async function login(user, pw) {
  await go('#/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', pw);
  await page.press('input[name=password]', 'Enter');
  await page.locator('#logout').waitFor();
}
export async function logout() {
  await page.click('#logout');
  await page.locator('form.login').waitFor();
}
// Waits until the job detail page shows one of the states; returns it.
export async function waitState(states, timeout = WAIT_MS) {
  await page.waitForFunction((ss) => ss.includes(document.getElementById('main').dataset.state), states, { timeout });
  return page.evaluate(() => document.getElementById('main').dataset.state);
}
// The REST API with the logged-in user's token (setup and checks only).
export const apiCall = (method, p, body) => page.evaluate(async ([m, u, b]) => {
  const tok = decodeURIComponent(document.cookie.split('; ').find((c) => c.startsWith('token='))?.slice(6) || '');
  const r = await fetch(u, { method: m, headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' }, body: b ? JSON.stringify(b) : undefined });
  return { status: r.status, body: await r.text() };
}, [method, p, body]);
