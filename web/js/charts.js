// charts.js - a small SVG line chart (no library): time on x, value on y.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

const pad2 = (n) => String(n).padStart(2, '0');
const clock = (ms) => { const d = new Date(ms); return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`; };

// lineChart({title, series: [{name, points: [[tMs, value], ...]}], yMax, unit})
// -> <figure>. With no points it says so instead of drawing empty axes.
export function lineChart({ title, series, yMax = 100, unit = '%' }) {
  const W = 600, H = 180, L = 40, R = 10, T = 10, B = 24;
  const fig = document.createElement('figure');
  fig.className = 'chart';
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  fig.append(cap);
  const all = series.flatMap((x) => x.points);
  if (all.length === 0) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No samples yet.';
    fig.append(p);
    return fig;
  }
  let t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  if (t1 - t0 < 1000) t0 = t1 - 60000;
  const top = Math.max(yMax, ...all.map((p) => p[1]));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  for (const f of [0, 0.5, 1]) {
    const v = top * f;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    const label = s('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' });
    label.textContent = `${Math.round(v)}${unit}`;
    svg.append(label);
  }
  for (const [t, anchor] of [[t0, 'start'], [t1, 'end']]) {
    const label = s('text', { x: x(t), y: H - 6, 'text-anchor': anchor, class: 'axis' });
    label.textContent = clock(t);
    svg.append(label);
  }
  series.forEach((ser, i) => {
    if (ser.points.length === 0) return;
    const d = ser.points.map((p, k) => `${k ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    const path = s('path', { d, class: `line c${i % 6}` });
    const tip = s('title');
    tip.textContent = ser.name;
    path.append(tip);
    svg.append(path);
  });
  fig.append(svg);
  if (series.length > 1) {
    const legend = document.createElement('div');
    legend.className = 'legend';
    series.forEach((ser, i) => {
      const item = document.createElement('span');
      item.className = `c${i % 6}`;
      item.textContent = ser.name;
      legend.append(item);
    });
    fig.append(legend);
  }
  return fig;
}
