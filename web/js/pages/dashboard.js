// Dashboard: my jobs by state, my recent jobs, GPU use of the cluster and of
// each VC (used / guaranteed / total), nodes by free GPUs, and the cluster's
// GPU utilization over time.
import { api, jobList, session } from '../api.js';
import { h, clear, errorBox, fmtTime, stateBadge, jobHref, usageBar, JOB_STATES } from '../ui.js';
import { vcList, vcGpus, nodeList } from '../model.js';
import { lineChart } from '../charts.js';
import { startSampling, clusterSeries } from '../metrics.js';
import { featuredList } from './templates.js';

const REFRESH_MS = 10000;

function stateCounts(box, counts) {
  clear(box, JOB_STATES.map((s) => h('a', { class: `count st-${s.toLowerCase()}`, href: `#/jobs?user=${encodeURIComponent(session.user)}&state=${s}` },
    h('span', { class: 'n' }, counts[s] ?? '–'), h('span', { class: 'l' }, s.toLowerCase()))));
}

async function loadCounts() {
  const got = await Promise.all(JOB_STATES.map((state) =>
    api.jobs({ username: session.user, state, limit: 1 }).then((r) => jobList(r).total).catch(() => null)));
  return Object.fromEntries(JOB_STATES.map((s, i) => [s, got[i]]));
}

function recentTable(jobs) {
  if (jobs.length === 0) {
    return h('p', { class: 'muted' }, 'No jobs yet. ', h('a', { href: '#/submit' }, 'Submit one'),
      ' or ', h('a', { href: '#/templates' }, 'start from a template'), '.');
  }
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'State'), h('th', {}, 'VC'), h('th', {}, 'Submitted'))),
    h('tbody', {}, jobs.map((j) => h('tr', {},
      h('td', {}, h('a', { href: jobHref(j.username, j.name) }, j.name)),
      h('td', {}, stateBadge(j.state)), h('td', {}, j.virtualCluster), h('td', { class: 'nowrap' }, fmtTime(j.submissionTime)))))));
}

function gpuSection(vcs, nodes) {
  const total = nodes.length ? nodes.reduce((a, n) => a + n.gpus, 0) : vcs.reduce((a, v) => a + vcGpus(v).total, 0);
  const used = nodes.length ? nodes.reduce((a, n) => a + n.used, 0) : vcs.reduce((a, v) => a + vcGpus(v).used, 0);
  return [
    h('div', { class: 'kv' }, h('span', {}, 'Cluster'), usageBar(used, total), h('span', { class: 'num' }, `${used} / ${total} GPUs used`)),
    vcs.map((v) => {
      const g = vcGpus(v);
      return h('div', { class: 'kv' }, h('span', {}, v.name), usageBar(g.used, g.total, g.guaranteed),
        h('span', { class: 'num' }, `${g.used} used / ${g.guaranteed} guaranteed / ${g.total} total`));
    }),
  ];
}

function nodesByFree(nodes) {
  if (nodes.length === 0) return h('p', { class: 'muted' }, 'No nodes have registered.');
  const sorted = [...nodes].sort((a, b) => b.free - a.free || a.name.localeCompare(b.name)).slice(0, 12);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Free GPUs'), h('th', {}, 'Used'), h('th', {}, 'Health'))),
    h('tbody', {}, sorted.map((n) => h('tr', {},
      h('td', {}, n.name), h('td', { class: 'num' }, `${n.free} / ${n.gpus}`), h('td', {}, usageBar(n.used, n.gpus)),
      h('td', {}, h('span', { class: `badge ${n.healthy ? 'ok' : 'bad'}` }, n.state)))))));
}

export async function render(main) {
  const counts = h('div', { class: 'counts' });
  const recent = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const gpus = h('div', {});
  const nodes = h('div', {});
  const chart = h('div', {});
  const featured = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('h1', {}, 'Dashboard'),
    h('div', { class: 'cards' },
      h('section', { class: 'card wide', 'aria-labelledby': 'd-my' }, h('h2', { id: 'd-my' }, 'My jobs'), counts),
      h('section', { class: 'card', 'aria-labelledby': 'd-recent' }, h('h2', { id: 'd-recent' }, 'Recent jobs'), recent),
      h('section', { class: 'card', 'aria-labelledby': 'd-tpl' }, h('h2', { id: 'd-tpl' }, 'Start from a template'), featured),
      h('section', { class: 'card', 'aria-labelledby': 'd-gpu' }, h('h2', { id: 'd-gpu' }, 'GPU use'), gpus),
      h('section', { class: 'card', 'aria-labelledby': 'd-nodes' }, h('h2', { id: 'd-nodes' }, 'Nodes by free GPUs'), nodes),
      h('section', { class: 'card', 'aria-labelledby': 'd-chart' }, h('h2', { id: 'd-chart' }, 'Cluster GPUs over time'), chart)));
  stateCounts(counts, {});
  let stopped = false;
  let timer = 0;
  api.templates({ featured: 'true', limit: 8 })
    .then((a) => { if (!stopped) clear(featured, featuredList(a.items || [])); })
    .catch((e) => { if (!stopped) clear(featured, errorBox(e)); });
  const load = async () => {
    const [c, r, v, n] = await Promise.allSettled([
      loadCounts(),
      api.jobs({ username: session.user, limit: 8, order: 'submissionTime,DESC' }),
      api.vcs(), api.nodes()]);
    if (stopped) return;
    if (c.status === 'fulfilled') stateCounts(counts, c.value);
    clear(recent, r.status === 'fulfilled' ? recentTable(jobList(r.value).jobs) : errorBox(r.reason));
    const nl = n.status === 'fulfilled' ? nodeList(n.value) : [];
    clear(gpus, v.status === 'fulfilled' ? gpuSection(vcList(v.value), nl) : errorBox(v.reason));
    clear(nodes, n.status === 'fulfilled' ? nodesByFree(nl) : errorBox(n.reason));
    timer = setTimeout(load, REFRESH_MS);
  };
  await load();
  const drawChart = () => clear(chart, lineChart({ title: 'Cluster GPUs in % (server history, then live samples)', series: clusterSeries(false) }));
  drawChart();
  const stopSampling = startSampling(drawChart);
  return () => { stopped = true; clearTimeout(timer); stopSampling(); };
}
