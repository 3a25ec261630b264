// metrics.js - GPU utilization over time for the charts.
//
// Source: the server's Prometheus text at /metrics, sampled by the portal
// every SAMPLE_MS while a page with a chart is open. Samples are kept in
// sessionStorage (at most MAX_SAMPLES), so the history grows as the user moves
// between pages and survives a reload of the tab. Metric names follow
// OpenPAI's exporters; the table below lists which ones are read.

import { api } from './api.js';

const SAMPLE_MS = 5000;
const MAX_SAMPLES = 360; // 30 minutes at 5 s
const KEY = 'pai-gpu-samples';

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

// One sample: {t, cluster: avg %, jobs: {"user~job": avg %}}.
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
  return { t, cluster: avg(nodes.map((s) => s.value)), jobs };
}

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || '[]'); } catch { return []; }
}

function save(list) {
  try { sessionStorage.setItem(KEY, JSON.stringify(list.slice(-MAX_SAMPLES))); } catch { /* full: keep going */ }
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

// Starts sampling; onSample() runs after each sample. Returns a stop function.
export function startSampling(onSample) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    await sampleOnce();
    if (stopped) return;
    onSample?.();
    timer = setTimeout(tick, SAMPLE_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

export function clusterSeries() {
  return load().filter((s) => s.cluster !== null).map((s) => [s.t, s.cluster]);
}

export function jobSeries(jobKey) {
  return load().filter((s) => s.jobs && s.jobs[jobKey] !== undefined && s.jobs[jobKey] !== null)
    .map((s) => [s.t, s.jobs[jobKey]]);
}

export function metricsAvailable() { return available; }
