// ui.js - small DOM helpers shared by every page. No framework: pages build
// their DOM with h() and re-render the parts that change.

// h('div', {class: 'x', onclick: fn}, child, ...) -> Element. Children may be
// strings, numbers, nodes, arrays or null/false (skipped). Text is always set
// as text, never as HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the CSP
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idSeq = 0;
export const uid = (p = 'f') => `${p}${++idSeq}`;

// A labelled form field with a place for its validation error.
// field('Name', input, {hint}) -> wrapper; input gets aria-describedby.
export function field(label, input, opts = {}) {
  if (!input.id) input.id = uid('in');
  const err = h('div', { class: 'field-error', id: `${input.id}-err`, role: 'alert' });
  input.setAttribute('aria-describedby', err.id);
  return h('div', { class: `field ${opts.class || ''}` },
    h('label', { for: input.id }, label),
    input,
    opts.hint ? h('div', { class: 'hint' }, opts.hint) : null,
    err);
}

export function setFieldError(input, msg) {
  const err = document.getElementById(`${input.id}-err`);
  if (err) err.textContent = msg || '';
  input.classList.toggle('invalid', !!msg);
  if (msg) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

export function toast(msg, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast ${kind}` }, msg);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

// A modal confirmation using <dialog>; resolves true when confirmed.
export function confirmDialog(text, okLabel = 'OK') {
  return new Promise((resolve) => {
    const ok = h('button', { class: 'danger', value: 'ok' }, okLabel);
    const dlg = h('dialog', { class: 'confirm' },
      h('form', { method: 'dialog' },
        h('p', {}, text),
        h('div', { class: 'actions' }, h('button', { value: 'cancel' }, 'Cancel'), ok)));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok'); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
    ok.focus();
  });
}

// A prompt using <dialog>; resolves the entered string or null.
export function promptDialog(text, value = '') {
  return new Promise((resolve) => {
    const input = h('input', { type: 'text', value, 'aria-label': text });
    const dlg = h('dialog', { class: 'confirm' },
      h('form', { method: 'dialog' },
        h('p', {}, text), input,
        h('div', { class: 'actions' }, h('button', { value: 'cancel', formnovalidate: true }, 'Cancel'),
          h('button', { class: 'primary', value: 'ok' }, 'OK'))));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok' ? input.value : null); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

const pad = (n) => String(n).padStart(2, '0');

export function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0 || Number.isNaN(ms)) return '–';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const hh = Math.floor(s / 3600); s %= 3600;
  const mm = Math.floor(s / 60); s %= 60;
  if (d) return `${d}d ${hh}h ${mm}m`;
  if (hh) return `${hh}h ${mm}m ${s}s`;
  if (mm) return `${mm}m ${s}s`;
  return `${s}s`;
}

// Duration from start to end (or now while running).
export function span(start, end) {
  if (!start) return null;
  return (end || Date.now()) - start;
}

export function stateBadge(state) {
  const s = String(state || 'UNKNOWN');
  return h('span', { class: `badge st-${s.toLowerCase()}` }, s);
}

export const JOB_STATES = ['WAITING', 'RUNNING', 'STOPPING', 'SUCCEEDED', 'FAILED', 'STOPPED'];

export function jobHref(user, name) {
  return `#/job/${encodeURIComponent(user)}~${encodeURIComponent(name)}`;
}

// A usage bar: used of total, with an optional guaranteed marker.
export function usageBar(used, total, guaranteed) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const bar = h('div', {
    class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': total || 0, 'aria-valuenow': used || 0,
    'aria-label': `${used} of ${total} used`,
  }, h('div', { class: 'fill', style: { width: `${pct.toFixed(1)}%` } }));
  if (guaranteed !== undefined && total > 0) {
    bar.append(h('div', { class: 'mark', style: { left: `${Math.min(100, (guaranteed / total) * 100).toFixed(1)}%` }, title: `guaranteed ${guaranteed}` }));
  }
  return bar;
}

// A section shown when a call fails; pages use it instead of throwing.
export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert' }, err?.message || String(err));
}

// Parse "#/path?x=1" -> {path, query: URLSearchParams}.
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  return { path: q < 0 ? raw : raw.slice(0, q), query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

export function debounce(fn, ms) {
  let t = 0;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

export function download(name, text, type = 'text/yaml') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
