// metrics.js - GPU utilization over time for the charts.
//
// Sources: first the server's in-memory metrics history
// (/api/v2/cluster/metrics-history and /api/v2/jobs/{job}/metrics-history,
// loaded when a chart page opens, so a reload or a new tab starts with up to
// HISTORY_MINUTES of past samples), then live samples of the server's
// Prometheus text at /metrics, taken every SAMPLE_MS while a page with a
// chart is open and appended after the history's last point. Live samples
// are kept in sessionStorage (at most MAX_SAMPLES).
//
// Two measures per sample:
//   utilization  mean GPU busy % (OpenPAI's exporter names, below), when
//                the nodes export it (real GPUs);
//   allocation   GPUs allocated to tasks as % of all GPUs (pai_cluster_gpus,
//                pai_vc_gpus_used / pai_vc_gpus_total), always available.

import { api } from './api.js';

const SAMPLE_MS = 5000;
const MAX_SAMPLES = 360; // 30 minutes at 5 s
const KEY = 'pai-gpu-samples';
const HISTORY_MINUTES = 60;
const HISTORY_POINTS = 360;

// Which series mean "GPU utilization in percent", in order of preference.
const NODE_UTIL = ['nvidiasmi_utilization_gpu', 'pai_gpu_utilization'];
const TASK_UTIL = ['task_gpu_percent', 'pai_task_gpu_utilization'];

// Parses Prometheus text exposition -> [{name, labels, value}].
export function parseProm(text) {
  const out = [];
  const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const line of String(text).split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = lineRe.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(labelRe)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    const value = Number(m[4]);
    if (!Number.isNaN(value)) out.push({ name: m[1], labels, value });
  }
  return out;
}

function pick(samples, names) {
  for (const n of names) {
    const got = samples.filter((s) => s.name === n);
    if (got.length) return got;
  }
  return [];
}

const avg = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

const sumOf = (samples, name, pred) =>
  samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

// Allocation in % of the cluster and of each VC's guarantee.
function allocation(samples) {
  const total = sumOf(samples, 'pai_cluster_gpus', (l) => l.use === 'total');
  const used = sumOf(samples, 'pai_cluster_gpus', (l) => l.use === 'used');
  const vcs = {};
  for (const s of samples.filter((x) => x.name === 'pai_vc_gpus_total')) {
    const vc = s.labels.vc;
    if (vc === undefined || vcs[vc] !== undefined) continue;
    const g = sumOf(samples, 'pai_vc_gpus_total', (l) => l.vc === vc);
    const u = sumOf(samples, 'pai_vc_gpus_used', (l) => l.vc === vc);
    vcs[vc] = g > 0 ? Math.min(100, (100 * u) / g) : 0;
  }
  return { alloc: total > 0 ? (100 * used) / total : null, vcs };
}

// One sample: {t, cluster: util % or null, alloc: % or null, vcs: {vc: %},
// jobs: {"user~job": util %}}.
function summarize(samples, t) {
  const nodes = pick(samples, NODE_UTIL);
  const tasks = pick(samples, TASK_UTIL);
  const byJob = {};
  for (const s of tasks) {
    const job = s.labels.job_name || (s.labels.username && s.labels.job ? `${s.labels.username}~${s.labels.job}` : '');
    if (job) (byJob[job] ||= []).push(s.value);
  }
  const jobs = {};
  for (const [k, v] of Object.entries(byJob)) jobs[k] = avg(v);
  return { t, cluster: avg(nodes.map((s) => s.value)), ...allocation(samples), jobs };
}

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || '[]'); } catch { return []; }
}

function save(list) {
  try { sessionStorage.setItem(KEY, JSON.stringify(list.slice(-MAX_SAMPLES))); } catch { /* full: keep going */ }
}

// ---- the server's history ----

let clusterHist = []; // samples shaped as summarize()'s, from the server
const jobHist = {}; // "user~job" -> {gpus: [[t, n]], util: [[t, %]]}

const pct = (u, t) => (t > 0 && u !== null && u !== undefined ? Math.min(100, (100 * u) / t) : null);

// The cluster answer -> samples {t, cluster, alloc, vcs, jobs}.
function fromClusterHistory(h) {
  const ts = h.timestamps || [];
  const c = h.cluster || {};
  const vcs = Object.entries(h.virtualClusters || {});
  const nodes = Object.values(h.nodes || {});
  return ts.map((t, i) => {
    const v = {};
    for (const [name, ser] of vcs) {
      const u = ser.usedGpus[i], g = ser.guaranteedGpus[i];
      if (u !== null && g !== null) v[name] = g > 0 ? pct(u, g) : 0;
    }
    const util = nodes.map((n) => n.utilization[i]).filter((x) => x !== null && x !== undefined);
    return { t, cluster: avg(util), alloc: pct((c.gpusUsed || [])[i], (c.gpusTotal || [])[i]), vcs: v, jobs: {} };
  });
}

// Loads the cluster's history (an older server without one: live samples only).
export async function loadClusterHistory() {
  try {
    clusterHist = fromClusterHistory(await api.clusterHistory(HISTORY_MINUTES, HISTORY_POINTS));
  } catch { /* no history: the live samples alone */ }
}

const pairs = (ts, vals) => ts.map((t, i) => [t, vals[i]]).filter((p) => p[1] !== null && p[1] !== undefined);

// Loads one job's history (its GPUs and utilization while it ran).
export async function loadJobHistory(user, name) {
  try {
    const h = await api.jobHistory(user, name, undefined, HISTORY_POINTS);
    jobHist[`${user}~${name}`] = { gpus: pairs(h.timestamps || [], h.gpus || []), util: pairs(h.timestamps || [], h.utilization || []) };
  } catch { /* no history: the live samples alone */ }
}

// History first, then the live points after its last one.
function withHistory(hist, live) {
  const last = hist.length ? hist[hist.length - 1][0] : -Infinity;
  return [...hist, ...live.filter((p) => p[0] > last)];
}

function samples() {
  const last = clusterHist.length ? clusterHist[clusterHist.length - 1].t : -Infinity;
  return [...clusterHist, ...load().filter((s) => s.t > last)];
}

let available = true; // false once /metrics answered an error

async function sampleOnce() {
  if (!available) return;
  try {
    const text = await api.metricsText();
    const list = load();
    list.push(summarize(parseProm(text), Date.now()));
    save(list);
  } catch {
    available = false;
  }
}

// Starts sampling; onSample() runs after each sample (the first time after
// the cluster's history has loaded, unless history is false). Returns a stop
// function.
export function startSampling(onSample, { history = true } = {}) {
  let stopped = false;
  let timer = 0;
  let first = history;
  const tick = async () => {
    if (first) await loadClusterHistory();
    first = false;
    await sampleOnce();
    if (stopped) return;
    onSample?.();
    timer = setTimeout(tick, SAMPLE_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// The cluster chart's series: utilization when exported, allocation always,
// and each VC's allocation of its guarantee when withVcs.
export function clusterSeries(withVcs = false) {
  const list = samples();
  const out = [];
  const util = list.filter((s) => s.cluster !== null && s.cluster !== undefined).map((s) => [s.t, s.cluster]);
  if (util.length) out.push({ name: 'GPU utilization', points: util });
  out.push({ name: 'GPUs allocated', points: list.filter((s) => s.alloc !== null && s.alloc !== undefined).map((s) => [s.t, s.alloc]) });
  if (withVcs) {
    const names = [...new Set(list.flatMap((s) => Object.keys(s.vcs || {})))].sort();
    for (const vc of names) {
      out.push({ name: `${vc}: allocated of guarantee`, points: list.filter((s) => s.vcs && s.vcs[vc] !== undefined).map((s) => [s.t, s.vcs[vc]]) });
    }
  }
  return out;
}

export function jobSeries(jobKey) {
  const live = load().filter((s) => s.jobs && s.jobs[jobKey] !== undefined && s.jobs[jobKey] !== null)
    .map((s) => [s.t, s.jobs[jobKey]]);
  return withHistory(jobHist[jobKey]?.util || [], live);
}

export function metricsAvailable() { return available; }

// GPUs held by one job's running tasks over time, recorded by the job page
// each time it loads the job (sessionStorage, at most MAX_SAMPLES per job).
const JOB_KEY = 'pai-job-gpus:';

export function recordJobGpus(jobKey, t, gpus) {
  try {
    const list = JSON.parse(sessionStorage.getItem(JOB_KEY + jobKey) || '[]');
    list.push([t, gpus]);
    sessionStorage.setItem(JOB_KEY + jobKey, JSON.stringify(list.slice(-MAX_SAMPLES)));
  } catch { /* storage full or disabled: no chart */ }
}

function recordedJobGpus(jobKey) {
  try { return JSON.parse(sessionStorage.getItem(JOB_KEY + jobKey) || '[]'); } catch { return []; }
}

export function jobGpuSeries(jobKey) {
  return withHistory(jobHist[jobKey]?.gpus || [], recordedJobGpus(jobKey));
}

// Number of GPUs in a task's containerGpus ("0,1" or "0-3" or a count).
export function gpuCount(containerGpus) {
  if (containerGpus === null || containerGpus === undefined || containerGpus === '') return 0;
  let n = 0;
  for (const part of String(containerGpus).split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    n += m ? Number(m[2]) - Number(m[1]) + 1 : 1;
  }
  return n;
}
