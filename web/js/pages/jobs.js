// Jobs: the job table with filters (user, VC, state, keyword, tag), sorting,
// paging, bulk stop and auto refresh. Filtering, sorting and paging are done
// by the server (GET /api/v2/jobs with offset/limit/order/withTotalCount), so
// the first page renders as fast with 10,000 jobs as with ten.
// The filter state lives in the URL fragment (#/jobs?state=RUNNING&page=2).
import { api, jobList, session } from '../api.js';
import { h, clear, errorBox, fmtTime, fmtDuration, span, stateBadge, jobHref, toast, confirmDialog, debounce, JOB_STATES, uid } from '../ui.js';
import { vcList } from '../model.js';

const REFRESH_MS = 10000;
const SIZES = [20, 50, 100];
const ACTIVE = new Set(['WAITING', 'RUNNING']);

// column: [label, order field or null, cell(job)]
const COLUMNS = [
  ['Name', 'jobName', (j) => h('a', { href: jobHref(j.username, j.name) }, j.name)],
  ['User', 'username', (j) => j.username],
  ['VC', 'vc', (j) => j.virtualCluster],
  ['State', 'state', (j) => stateBadge(j.state)],
  ['GPUs', 'totalGpuNumber', (j) => j.totalGpuNumber ?? '–'],
  ['Retries', 'retries', (j) => j.retries ?? 0],
  ['Submitted', 'submissionTime', (j) => fmtTime(j.submissionTime)],
  ['Duration', 'completionTime', (j) => fmtDuration(span(j.launchedTime || j.createdTime, j.completedTime))],
  ['Tags', null, (j) => (j.tags || []).map((t) => h('span', { class: 'tag' }, t))],
];

function readState(query) {
  const size = Number(query.get('size'));
  return {
    user: query.get('user') ?? '',
    vc: query.get('vc') ?? '',
    state: query.get('state') ?? '',
    keyword: query.get('keyword') ?? '',
    tag: query.get('tag') ?? '',
    order: query.get('order') || 'submissionTime,DESC',
    page: Math.max(1, Number(query.get('page')) || 1),
    size: SIZES.includes(size) ? size : SIZES[0],
    refresh: query.get('refresh') !== 'off',
  };
}

function writeState(st) {
  const q = new URLSearchParams();
  for (const k of ['user', 'vc', 'state', 'keyword', 'tag']) if (st[k]) q.set(k, st[k]);
  if (st.order !== 'submissionTime,DESC') q.set('order', st.order);
  if (st.page > 1) q.set('page', String(st.page));
  if (st.size !== SIZES[0]) q.set('size', String(st.size));
  if (!st.refresh) q.set('refresh', 'off');
  const s = q.toString();
  history.replaceState(null, '', `#/jobs${s ? `?${s}` : ''}`);
}

export async function render(main, { query }) {
  const st = readState(query);
  const selected = new Set(); // "user~name"
  let jobs = [];
  let total = 0;
  let timer = 0;
  let stopped = false;
  let seq = 0;

  const input = (key, attrs) => {
    const el = h('input', { id: uid('flt'), value: st[key], ...attrs });
    el.addEventListener('input', debounce(() => { st[key] = el.value.trim(); st.page = 1; reload(); }, 300));
    return el;
  };
  const userIn = input('user', { placeholder: 'any user', name: 'user' });
  const keywordIn = input('keyword', { placeholder: 'name, user or VC', name: 'keyword', type: 'search' });
  const tagIn = input('tag', { placeholder: 'any tag', name: 'tag' });
  const vcSel = h('select', { id: uid('flt'), name: 'vc' }, h('option', { value: '' }, 'any VC'));
  if (st.vc) vcSel.append(h('option', { value: st.vc }, st.vc));
  vcSel.value = st.vc;
  const stateSel = h('select', { id: uid('flt'), name: 'state' }, h('option', { value: '' }, 'any state'),
    JOB_STATES.map((s) => h('option', { value: s }, s)));
  stateSel.value = st.state;
  for (const [sel, key] of [[vcSel, 'vc'], [stateSel, 'state']]) {
    sel.addEventListener('change', () => { st[key] = sel.value; st.page = 1; reload(); });
  }
  const label = (el, text) => h('label', { class: 'filter', for: el.id }, h('span', {}, text), el);
  const mine = h('button', { type: 'button', onclick: () => { st.user = session.user; userIn.value = st.user; st.page = 1; reload(); } }, 'My jobs');
  const refresh = h('input', { type: 'checkbox', id: uid('rf'), checked: st.refresh });
  refresh.addEventListener('change', () => { st.refresh = refresh.checked; writeState(st); schedule(); });
  const stopBtn = h('button', { class: 'danger', type: 'button', disabled: true, onclick: () => bulkStop() }, 'Stop selected');
  const summary = h('span', { class: 'muted', 'aria-live': 'polite' });
  const tableBox = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });

  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'), h('a', { class: 'button primary', href: '#/submit' }, 'Submit a job')),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      label(userIn, 'User'), label(vcSel, 'VC'), label(stateSel, 'State'), label(keywordIn, 'Keyword'), label(tagIn, 'Tag'), mine),
    h('div', { class: 'toolbar' }, stopBtn,
      h('label', { class: 'check', for: refresh.id }, refresh, ' Refresh every 10 s'), summary),
    tableBox, pager);

  api.vcs().then((v) => {
    for (const vc of vcList(v)) if (vc.name !== st.vc) vcSel.append(h('option', { value: vc.name }, vc.name));
  }).catch(() => {});

  function updateStopBtn() {
    stopBtn.disabled = selected.size === 0;
    stopBtn.textContent = selected.size ? `Stop selected (${selected.size})` : 'Stop selected';
  }

  function header() {
    const [field, dir] = st.order.split(',');
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select all stoppable jobs on this page' });
    const stoppable = jobs.filter((j) => ACTIVE.has(j.state));
    all.checked = stoppable.length > 0 && stoppable.every((j) => selected.has(`${j.username}~${j.name}`));
    all.addEventListener('change', () => {
      for (const j of stoppable) { const k = `${j.username}~${j.name}`; if (all.checked) selected.add(k); else selected.delete(k); }
      draw();
    });
    return h('thead', {}, h('tr', {}, h('th', { class: 'sel' }, all), COLUMNS.map(([text, key]) => {
      if (!key) return h('th', {}, text);
      const on = key === field;
      const btn = h('button', { type: 'button', class: 'sort', onclick: () => {
        st.order = `${key},${on && dir === 'DESC' ? 'ASC' : 'DESC'}`; st.page = 1; reload();
      } }, text, on ? (dir === 'DESC' ? ' ▼' : ' ▲') : '');
      return h('th', { 'aria-sort': on ? (dir === 'DESC' ? 'descending' : 'ascending') : null }, btn);
    })));
  }

  function row(j) {
    const key = `${j.username}~${j.name}`;
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${j.name}`, checked: selected.has(key), disabled: !ACTIVE.has(j.state) });
    box.addEventListener('change', () => { if (box.checked) selected.add(key); else selected.delete(key); updateStopBtn(); });
    return h('tr', { dataset: { job: key } }, h('td', { class: 'sel' }, box), COLUMNS.map(([, , cell]) => h('td', {}, cell(j))));
  }

  function draw() {
    const pages = Math.max(1, Math.ceil(total / st.size));
    clear(tableBox, jobs.length === 0
      ? h('p', { class: 'muted empty' }, 'No jobs match these filters.')
      : h('table', { class: 'grid jobs' }, header(), h('tbody', {}, jobs.map(row))));
    const first = total === 0 ? 0 : (st.page - 1) * st.size + 1;
    summary.textContent = `${first}–${Math.min(total, st.page * st.size)} of ${total} jobs`;
    const go = (p) => h('button', { type: 'button', disabled: p < 1 || p > pages || p === st.page, onclick: () => { st.page = p; reload(); } });
    const sizeSel = h('select', { 'aria-label': 'Jobs per page' }, SIZES.map((n) => h('option', { value: n }, `${n} per page`)));
    sizeSel.value = String(st.size);
    sizeSel.addEventListener('change', () => { st.size = Number(sizeSel.value); st.page = 1; reload(); });
    clear(pager, clear(go(1), '« First'), clear(go(st.page - 1), '‹ Previous'),
      h('span', {}, `Page ${st.page} of ${pages}`), clear(go(st.page + 1), 'Next ›'), clear(go(pages), 'Last »'), sizeSel);
    updateStopBtn();
  }

  function schedule() {
    clearTimeout(timer);
    if (st.refresh && !stopped) timer = setTimeout(() => reload(true), REFRESH_MS);
  }

  async function reload(quiet) {
    const my = ++seq;
    writeState(st);
    try {
      const r = jobList(await api.jobs({
        username: st.user, vc: st.vc, state: st.state, keyword: st.keyword, tagsContain: st.tag,
        order: st.order, offset: (st.page - 1) * st.size, limit: st.size,
      }));
      if (my !== seq || stopped) return;
      jobs = r.jobs;
      total = r.total;
      draw();
      if (!main.dataset.loaded) performance.mark('pai-jobs-rendered'); // read by bench/portal
      main.dataset.loaded = 'true';
    } catch (e) {
      if (my !== seq || stopped) return;
      if (!quiet) clear(tableBox, errorBox(e));
    }
    schedule();
  }

  async function bulkStop() {
    const keys = [...selected];
    if (!keys.length || !(await confirmDialog(`Stop ${keys.length} job(s)?`, 'Stop'))) return;
    const results = await Promise.allSettled(keys.map((k) => {
      const i = k.indexOf('~');
      return api.stopJob(k.slice(0, i), k.slice(i + 1));
    }));
    const failed = results.filter((r) => r.status === 'rejected');
    selected.clear();
    toast(failed.length ? `${failed.length} of ${keys.length} could not be stopped: ${failed[0].reason.message}` : `Stopping ${keys.length} job(s).`, failed.length ? 'error' : 'info');
    reload();
  }

  await reload();
  return () => { stopped = true; clearTimeout(timer); };
}
