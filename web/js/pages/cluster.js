// Cluster: nodes with their GPUs (model, used / free, utilization when
// known) and health; virtual clusters with their guarantees and use; the
// cluster's GPU utilization over time.
import { api } from '../api.js';
import { h, clear, errorBox, fmtTime, usageBar } from '../ui.js';
import { vcList, vcGpus, nodeList } from '../model.js';
import { lineChart } from '../charts.js';
import { startSampling, clusterSeries } from '../metrics.js';

const REFRESH_MS = 10000;

function nodesTable(nodes) {
  if (nodes.length === 0) return h('p', { class: 'muted' }, 'No nodes have registered.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid nodes' },
    h('thead', {}, h('tr', {}, ['Node', 'IP', 'GPU model', 'GPUs used', 'Free', 'Utilization', 'Health', 'Last heartbeat'].map((c) => h('th', {}, c)))),
    h('tbody', {}, nodes.map((n) => h('tr', { dataset: { node: n.name } },
      h('td', {}, n.name), h('td', {}, n.ip || '–'), h('td', {}, n.gpuModel || '–'),
      h('td', {}, usageBar(n.used, n.gpus), h('span', { class: 'num' }, ` ${n.used} / ${n.gpus}`)),
      h('td', { class: 'num' }, n.free),
      h('td', { class: 'num' }, n.util === null ? '–' : `${Math.round(n.util)}%`),
      h('td', {}, h('span', { class: `badge ${n.healthy ? 'ok' : 'bad'}` }, n.state)),
      h('td', {}, n.lastHeartbeat ? fmtTime(typeof n.lastHeartbeat === 'number' ? n.lastHeartbeat : Date.parse(n.lastHeartbeat)) : '–'))))));
}

function vcsTable(vcs) {
  if (vcs.length === 0) return h('p', { class: 'muted' }, 'No virtual clusters.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, ['VC', 'GPU use', 'Used', 'Guaranteed', 'Total', 'Share of cluster'].map((c) => h('th', {}, c)))),
    h('tbody', {}, vcs.map((v) => {
      const g = vcGpus(v);
      return h('tr', { dataset: { vc: v.name } }, h('td', {}, v.name), h('td', {}, usageBar(g.used, g.total, g.guaranteed)),
        h('td', { class: 'num' }, g.used), h('td', { class: 'num' }, g.guaranteed), h('td', { class: 'num' }, g.total),
        h('td', { class: 'num' }, typeof v.capacity === 'number' ? `${Math.round(v.capacity)}%` : '–'));
    }))));
}

export async function render(main) {
  const nodesBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const vcsBox = h('div', {});
  const totals = h('p', { class: 'totals' });
  const chart = h('div', {});
  main.append(h('h1', {}, 'Cluster'), totals,
    h('section', { class: 'card', 'aria-labelledby': 'c-nodes' }, h('h2', { id: 'c-nodes' }, 'Nodes'), nodesBox),
    h('section', { class: 'card', 'aria-labelledby': 'c-vcs' }, h('h2', { id: 'c-vcs' }, 'Virtual clusters'), vcsBox),
    h('section', { class: 'card', 'aria-labelledby': 'c-chart' }, h('h2', { id: 'c-chart' }, 'GPU utilization over time'), chart));
  let stopped = false;
  let timer = 0;
  const load = async () => {
    const [n, v] = await Promise.allSettled([api.nodes(), api.vcs()]);
    if (stopped) return;
    if (n.status === 'fulfilled') {
      const nodes = nodeList(n.value);
      clear(nodesBox, nodesTable(nodes));
      const g = nodes.reduce((a, x) => a + x.gpus, 0);
      const u = nodes.reduce((a, x) => a + x.used, 0);
      const healthy = nodes.filter((x) => x.healthy).length;
      totals.textContent = `${nodes.length} nodes (${healthy} healthy), ${g} GPUs, ${u} in use, ${g - u} free.`;
    } else clear(nodesBox, errorBox(n.reason));
    clear(vcsBox, v.status === 'fulfilled' ? vcsTable(vcList(v.value)) : errorBox(v.reason));
    timer = setTimeout(load, REFRESH_MS);
  };
  await load();
  const drawChart = () => clear(chart, lineChart({ title: 'Cluster GPUs in % (server history, then live samples)', series: clusterSeries(true) }));
  drawChart();
  const stopSampling = startSampling(drawChart);
  return () => { stopped = true; clearTimeout(timer); stopSampling(); };
}
