// Submit from a template: one field per parameter the template declares
// (its defaults filled in), the job's name and virtual cluster; the server
// merges the values into the template's protocol, submits the job as the
// user's own and records the template in it (POST .../submit).
import { api, session } from '../api.js';
import { h, errorBox, field, setFieldError, toast, jobHref, uid } from '../ui.js';
import { vcList } from '../model.js';
import { templateHref } from './templates.js';

const NAME_RE = /^[A-Za-z0-9_-]{1,255}$/;

// A parameter's text back to what the protocol holds: an integer stays a
// number (as `pai submit --param` sends it), anything else is a string.
export function paramValue(text, original) {
  if (/^-?\d+$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  if (typeof original === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}

export async function render(main, { params }) {
  const [id] = params;
  const [tAns, vAns] = await Promise.allSettled([api.template(id), api.vcs()]);
  if (tAns.status !== 'fulfilled') {
    main.append(h('h1', {}, 'Submit from a template'), errorBox(tAns.reason));
    return null;
  }
  const t = tAns.value;
  const vcs = vAns.status === 'fulfilled' ? vcList(vAns.value) : [];
  const defaults = t.parameters || {};
  const stamp = new Date().toISOString().slice(5, 16).replace(/[-:T]/g, '');
  const nameIn = h('input', { name: 'job-name', value: `${t.jobName}-${stamp}`, required: true, autocomplete: 'off' });
  const vcSel = h('select', { name: 'vc' }, vcs.map((v) => h('option', { value: v.name }, v.name)));
  if (vcs.some((v) => v.name === 'default')) vcSel.value = 'default';
  const paramIns = Object.keys(defaults).map((k) => {
    const v = defaults[k];
    const input = h('input', { id: uid('par'), name: `param-${k}`, class: 'mono', value: typeof v === 'object' ? JSON.stringify(v) : String(v) });
    return [k, input];
  });
  const summary = h('p', { class: 'form-error', role: 'alert' });
  const submitBtn = h('button', { type: 'submit', class: 'primary' }, 'Submit job');
  const form = h('form', { class: 'card tpl-submit', novalidate: true },
    h('h2', {}, 'Your job'),
    field('Job name', nameIn, { hint: 'letters, digits, - and _' }),
    vcs.length ? field('Virtual cluster', vcSel) : null,
    h('h2', {}, 'Parameters'),
    paramIns.length ? paramIns.map(([k, input]) => field(k, input, { hint: `default: ${input.value}` }))
      : h('p', { class: 'muted' }, 'This template declares no parameters.'),
    summary,
    h('div', { class: 'actions' }, submitBtn, h('a', { class: 'button', href: templateHref(t.id) }, 'Cancel')));
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, `Use ${t.title}`)),
    h('p', { class: 'muted' }, 'From the template ', h('a', { href: templateHref(t.id) }, t.id),
      ` (used ${t.useCount} ${t.useCount === 1 ? 'time' : 'times'}). The job is yours; it records the template it came from.`),
    form);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setFieldError(nameIn, '');
    summary.textContent = '';
    const name = nameIn.value.trim();
    if (!NAME_RE.test(name)) { setFieldError(nameIn, 'Letters, digits, - and _ only.'); nameIn.focus(); return; }
    const values = {};
    for (const [k, input] of paramIns) {
      const orig = defaults[k];
      const shown = typeof orig === 'object' ? JSON.stringify(orig) : String(orig);
      if (input.value !== shown) values[k] = paramValue(input.value, orig);
    }
    submitBtn.disabled = true;
    try {
      const ans = await api.submitFromTemplate(t.id, { name, parameters: values, virtualCluster: vcs.length ? vcSel.value : undefined });
      toast(`Submitted ${ans.job}.`);
      location.hash = jobHref(session.user, name);
    } catch (e) {
      summary.textContent = `The server refused the job: ${e.message}`;
      if (e.code === 'ConflictJobError') setFieldError(nameIn, 'A job with this name exists.');
    } finally {
      submitBtn.disabled = false;
    }
  });
  main.dataset.ready = 'true';
  return null;
}
