// app.js - the portal's entry point: the page table, the router and the
// header. Pages live in js/pages/; each exports render(main, ctx) and may
// return a cleanup function (timers, samplers) run when the page is left.
//
// Routing uses the URL fragment (#/jobs?state=RUNNING), so the server only
// serves index.html at "/" and the files under /portal/.

import { session, setUnauthorizedHandler, api } from './js/api.js';
import { h, clear, parseHash, toast } from './js/ui.js';

const pages = [
  { re: /^\/login$/, title: 'Log in', load: () => import('./js/pages/login.js'), anon: true },
  { re: /^\/$/, title: 'Dashboard', load: () => import('./js/pages/dashboard.js'), nav: 'dashboard' },
  { re: /^\/submit$/, title: 'Submit a job', load: () => import('./js/pages/submit.js'), nav: 'submit' },
  { re: /^\/jobs$/, title: 'Jobs', load: () => import('./js/pages/jobs.js'), nav: 'jobs' },
  { re: /^\/job\/([^/~]+)~([^/]+)$/, title: 'Job', load: () => import('./js/pages/job.js'), nav: 'jobs' },
  { re: /^\/templates$/, title: 'Templates', load: () => import('./js/pages/templates.js'), nav: 'templates' },
  { re: /^\/templates\/publish$/, title: 'Publish a template', load: () => import('./js/pages/template_publish.js'), nav: 'templates' },
  { re: /^\/template\/([^/~]+~[^/]+)$/, title: 'Template', load: () => import('./js/pages/template.js'), nav: 'templates' },
  { re: /^\/template\/([^/~]+~[^/]+)\/submit$/, title: 'Submit from a template', load: () => import('./js/pages/template_submit.js'), nav: 'templates' },
  { re: /^\/cluster$/, title: 'Cluster', load: () => import('./js/pages/cluster.js'), nav: 'cluster' },
  { re: /^\/usage$/, title: 'GPU usage', load: () => import('./js/pages/usage.js'), nav: 'usage' },
  { re: /^\/admin(?:\/(users|groups|vcs))?$/, title: 'Administration', load: () => import('./js/pages/admin.js'), nav: 'admin', admin: true },
  { re: /^\/profile$/, title: 'My profile', load: () => import('./js/pages/profile.js'), nav: 'profile' },
];

const navItems = [
  ['dashboard', '#/', 'Dashboard'],
  ['submit', '#/submit', 'Submit'],
  ['jobs', '#/jobs', 'Jobs'],
  ['templates', '#/templates', 'Templates'],
  ['cluster', '#/cluster', 'Cluster'],
  ['usage', '#/usage', 'Usage'],
  ['admin', '#/admin', 'Admin', true],
  ['profile', '#/profile', 'Profile'],
];

let cleanup = null;
let renderSeq = 0;

function renderHeader(active) {
  const top = document.getElementById('top');
  if (!session.loggedIn) {
    clear(top, h('div', { class: 'brand' }, 'pai'));
    return;
  }
  const links = navItems
    .filter(([, , , adminOnly]) => !adminOnly || session.admin)
    .map(([key, href, label]) => h('a', { href, class: key === active ? 'active' : '', 'aria-current': key === active ? 'page' : null }, label));
  const toggle = h('button', { class: 'menu-toggle', 'aria-expanded': 'false', 'aria-controls': 'nav', 'aria-label': 'Menu' }, '☰');
  const nav = h('nav', { id: 'nav', 'aria-label': 'Main' }, links);
  toggle.addEventListener('click', () => {
    const open = nav.classList.toggle('open');
    toggle.setAttribute('aria-expanded', String(open));
  });
  clear(top,
    h('a', { class: 'brand', href: '#/' }, 'pai'),
    toggle, nav,
    h('div', { class: 'who' },
      h('span', { class: 'user', title: session.admin ? 'administrator' : 'user' }, session.user, session.admin ? ' (admin)' : ''),
      h('button', { id: 'logout', class: 'link', onclick: logout }, 'Log out')));
}

async function logout() {
  try { await api.logout(); } catch { /* the token may already be gone */ }
  session.clear();
  location.hash = '#/login';
}

async function route() {
  const seq = ++renderSeq;
  const { path, query } = parseHash(location.hash);
  const page = pages.find((p) => p.re.test(path));
  const main = document.getElementById('main');
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  if (!page) { location.hash = '#/'; return; }
  if (!page.anon && !session.loggedIn) {
    location.hash = `#/login?next=${encodeURIComponent(location.hash.slice(1) || '/')}`;
    return;
  }
  renderHeader(page.nav);
  document.title = `${page.title} · pai`;
  if (page.admin && !session.admin) {
    clear(main, h('section', { class: 'refused' },
      h('h1', {}, 'Administrators only'),
      h('p', {}, `You are logged in as ${session.user}, who is not an administrator. Ask an administrator for access.`),
      h('p', {}, h('a', { href: '#/' }, 'Back to the dashboard'))));
    return;
  }
  const params = path.match(page.re).slice(1).map((x) => (x === undefined ? x : decodeURIComponent(x)));
  try {
    const mod = await page.load();
    if (seq !== renderSeq) return; // the user moved on meanwhile
    clear(main);
    const c = await mod.render(main, { params, query, path });
    if (seq !== renderSeq) { if (typeof c === 'function') c(); return; }
    cleanup = typeof c === 'function' ? c : null;
  } catch (e) {
    if (seq !== renderSeq) return;
    clear(main, h('div', { class: 'error-box', role: 'alert' }, `This page failed: ${e.message}`));
  }
  if (document.activeElement === document.body) main.focus({ preventScroll: true });
}

setUnauthorizedHandler(() => {
  if (!session.loggedIn) return;
  session.clear();
  toast('Your session ended; please log in again.', 'error');
  location.hash = '#/login';
});

// The skip link must not change the fragment (that is the router's).
document.querySelector('a.skip')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('main').focus();
});

window.addEventListener('hashchange', route);
route();
