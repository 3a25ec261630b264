// Usage: GPU-hours held versus used over a period, per VC, user or job
// (GET /api/v2/usage, docs/monitoring.md "Utilization"), as a table with
// totals and a CSV export. Jobs whose GPUs sit idle are marked.
import { api } from '../api.js';
import { h, clear, errorBox, field, download, usageBar, jobHref } from '../ui.js';

const PERIODS = [['1h', 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];
const hours = (x) => (typeof x === 'number' ? x.toFixed(x < 1 ? 4 : 2) : '–');
const pct = (x) => (typeof x === 'number' ? `${Math.round(x * 100)}%` : '–');

function keyOf(by, r) { return by === 'job' ? r.job : r[by]; }

function table(by, answer) {
  const rows = answer.rows || [];
  if (rows.length === 0) return h('p', { class: 'muted empty' }, 'No GPUs were held in this period.');
  const extra = by === 'job' ? ['VC', 'State', 'Idle'] : [];
  const head = [by === 'job' ? 'Job' : by === 'user' ? 'User' : 'VC', 'GPU-hours held', 'GPU-hours used', 'Utilization', ...extra];
  const cells = (r, total) => {
    const key = total ? 'Total' : keyOf(by, r);
    const name = by === 'job' && !total ? h('a', { href: jobHref(r.user, key.slice(key.indexOf('~') + 1)) }, key) : key;
    const util = typeof r.utilization === 'number' ? r.utilization : null;
    const out = [h(total ? 'th' : 'td', {}, name), h('td', { class: 'num' }, hours(r.heldGpuHours)),
      h('td', { class: 'num' }, hours(r.usedGpuHours)),
      h('td', {}, usageBar(util === null ? 0 : Math.round(util * 100), 100), h('span', { class: 'num' }, ` ${pct(util)}`))];
    if (by === 'job') {
      out.push(h('td', {}, total ? '' : r.vc), h('td', {}, total ? '' : r.state),
        h('td', {}, r.gpuIdle ? h('span', { class: 'badge bad' }, 'idle') : ''));
    }
    return out;
  };
  return h('table', { class: 'grid usage' },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: { key: keyOf(by, r) } }, cells(r, false)))),
    h('tfoot', {}, h('tr', {}, cells(answer.total || {}, true))));
}

function csvField(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(by, answer) {
  const cols = [by, 'heldGpuHours', 'usedGpuHours', 'utilization', ...(by === 'job' ? ['user', 'vc', 'state', 'gpuIdle'] : [])];
  const lines = [cols.join(',')];
  for (const r of answer.rows || []) lines.push(cols.map((c) => csvField(r[c])).join(','));
  return lines.join('\n') + '\n';
}

export async function render(main) {
  const bySel = h('select', { name: 'by' }, ['vc', 'user', 'job'].map((b) => h('option', { value: b }, b)));
  const periodSel = h('select', { name: 'period' }, PERIODS.map(([l]) => h('option', { value: l, selected: l === '7d' }, `last ${l}`)));
  const box = h('div', { class: 'table-wrap' }, h('p', { class: 'muted' }, 'Loading…'));
  const summary = h('p', { class: 'totals' });
  let last = null;
  const exportBtn = h('button', { type: 'button', class: 'export-csv', disabled: true,
    onclick: () => last && download(`usage-${last.by}.csv`, toCsv(last.by, last.answer), 'text/csv') }, 'Export CSV');
  main.append(h('h1', {}, 'GPU usage'),
    h('p', { class: 'muted' }, 'GPU-hours the jobs held versus the GPU-hours they used (the utilization the nodes report).'),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, field('Group by', bySel), field('Period', periodSel)),
    h('div', { class: 'toolbar' }, exportBtn), summary, box);
  let stopped = false;
  const load = async () => {
    const by = bySel.value;
    const span = PERIODS.find(([l]) => l === periodSel.value)[1];
    const to = Date.now();
    try {
      const answer = await api.usage({ from: to - span, to, groupBy: by });
      if (stopped) return;
      last = { by, answer };
      exportBtn.disabled = false;
      const t = answer.total || {};
      summary.textContent = `${hours(t.heldGpuHours)} GPU-hours held, ${hours(t.usedGpuHours)} used (${pct(t.utilization)}).`;
      clear(box, table(by, answer));
    } catch (err) {
      if (!stopped) clear(box, errorBox(err));
    }
  };
  bySel.addEventListener('change', load);
  periodSel.addEventListener('change', load);
  await load();
  return () => { stopped = true; };
}
