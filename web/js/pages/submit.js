// Submit: a form for single and distributed jobs and a YAML editor kept in
// sync (both edit one protocol document, see protocol.js); import and export
// YAML; validation errors next to each field before submitting; clone a past
// job (#/submit?clone=user~job) into the form.
import { api, session } from '../api.js';
import { h, clear, field, setFieldError, toast, debounce, download, jobHref } from '../ui.js';
import { vcList } from '../model.js';
import * as P from '../protocol.js';

export async function render(main, { query }) {
  let doc = P.newJob(session.user, '');
  let vcs = [];
  const inputs = new Map(); // error path -> input element
  const formBox = h('div', { class: 'job-form' });
  const yamlArea = h('textarea', { id: 'yaml-editor', class: 'yaml', spellcheck: 'false', rows: 30, 'aria-describedby': 'yaml-err' });
  const yamlErr = h('div', { id: 'yaml-err', class: 'field-error', role: 'alert' });
  const summary = h('div', { class: 'form-error', role: 'alert' });
  const submitBtn = h('button', { type: 'submit', class: 'primary', form: 'job-form' }, 'Submit');
  const fileIn = h('input', { type: 'file', accept: '.yaml,.yml,text/yaml', class: 'visually-hidden', id: 'yaml-file' });

  const clone = query.get('clone');
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, clone ? `Clone ${clone.split('~').slice(1).join('~')}` : 'Submit a job'),
      h('div', { class: 'actions' },
        h('label', { class: 'button', for: 'yaml-file', tabindex: '0', role: 'button', onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fileIn.click(); } } }, 'Import YAML'),
        fileIn,
        h('button', { type: 'button', onclick: () => download(`${doc.name || 'job'}.yaml`, P.toYaml(doc)) }, 'Export YAML'))),
    h('div', { class: 'submit-layout' },
      h('form', { id: 'job-form', class: 'card', novalidate: true, onsubmit: (e) => { e.preventDefault(); submit(); } },
        h('h2', {}, 'Form'), formBox, summary, h('div', { class: 'actions' }, submitBtn)),
      h('section', { class: 'card yaml-card', 'aria-labelledby': 'yaml-h' },
        h('h2', { id: 'yaml-h' }, h('label', { for: 'yaml-editor' }, 'YAML')), yamlArea, yamlErr)));

  // --- form <-> document -------------------------------------------------
  const syncYaml = () => { yamlArea.value = P.toYaml(doc); setYamlError(''); };
  const changed = debounce(() => showErrors(false), 250);

  function setYamlError(msg) {
    yamlErr.textContent = msg;
    yamlArea.classList.toggle('invalid', !!msg);
  }

  // An input bound to the document: get() reads, set(value) writes and
  // returns an error string for values that cannot be written at all.
  function bound(path, el, get, set, opts = {}) {
    el.value = get() ?? '';
    el.name = path;
    inputs.set(path, el);
    el.addEventListener(opts.event || 'input', () => {
      const bad = set(el.value);
      setFieldError(el, bad || '');
      if (!bad) { syncYaml(); changed(); }
      if (opts.rerender) drawForm();
    });
    return el;
  }

  const intOrRaw = (v) => (v.trim() === '' ? undefined : /^-?\d+$/.test(v.trim()) ? Number(v) : v);
  const num = (path, get, set, attrs = {}) => bound(path, h('input', { type: 'number', inputmode: 'numeric', ...attrs }), get,
    (v) => { set(intOrRaw(v)); return ''; });

  function jobFields() {
    const vcSel = h('select', {});
    const names = vcs.map((v) => v.name);
    const cur = doc.defaults?.virtualCluster ?? '';
    if (cur && !names.includes(cur)) names.unshift(cur);
    if (!cur) vcSel.append(h('option', { value: '' }, 'choose…'));
    for (const n of names) vcSel.append(h('option', { value: n }, n));
    const prio = h('select', {}, P.PRIORITIES.map((p) => h('option', { value: p }, p || 'default')));
    return h('fieldset', {}, h('legend', {}, 'Job'),
      h('div', { class: 'row' },
        field('Name', bound('name', h('input', { required: true, autocomplete: 'off' }), () => doc.name, (v) => { doc.name = v; })),
        field('Virtual cluster', bound('defaults.virtualCluster', vcSel, () => cur,
          (v) => { doc.defaults ||= {}; doc.defaults.virtualCluster = v; }, { event: 'change' })),
        field('Priority', bound('priority', prio, () => doc.extras?.hivedScheduler?.jobPriorityClass ?? '', (v) => {
          if (v) { doc.extras ||= {}; doc.extras.hivedScheduler ||= {}; doc.extras.hivedScheduler.jobPriorityClass = v; }
          else if (doc.extras?.hivedScheduler) { delete doc.extras.hivedScheduler.jobPriorityClass; }
        }, { event: 'change' })),
        field('Job retries', num('jobRetryCount', () => doc.jobRetryCount, (v) => { doc.jobRetryCount = v; }, { min: 0 }))));
  }

  function roleFields(role) {
    const r = doc.taskRoles[role];
    const p = `taskRoles.${role}`;
    r.resourcePerInstance ||= {};
    const res = r.resourcePerInstance;
    const nameIn = h('input', { value: role, autocomplete: 'off' });
    nameIn.name = `${p}.name`;
    inputs.set(`${p}.name`, nameIn);
    nameIn.addEventListener('change', () => {
      const to = nameIn.value.trim();
      if (!to || to === role) return;
      if (!P.renameRole(doc, role, to)) { setFieldError(nameIn, `A role named ${to} already exists.`); return; }
      syncYaml(); drawForm(); showErrors(false);
    });
    const cmd = bound(`${p}.commands`, h('textarea', { rows: 4, class: 'mono', spellcheck: 'false' }),
      () => (r.commands || []).join('\n'), (v) => { r.commands = v.split('\n').filter((l, i, a) => l.trim() || i < a.length - 1); });
    const ports = bound(`${p}.ports`, h('input', { placeholder: 'ssh:1, http:1', autocomplete: 'off' }), () => P.portsToText(res.ports), (v) => {
      const parsed = P.parsePorts(v);
      if (parsed === null) return 'Ports look like "ssh:1, http:1".';
      if (Object.keys(parsed).length) res.ports = parsed; else delete res.ports;
      return '';
    });
    const completion = (k) => num(`${p}.${k}`, () => r.completion?.[k], (v) => {
      r.completion ||= {};
      if (v === undefined) delete r.completion[k]; else r.completion[k] = v;
    }, { min: -1 });
    const removeBtn = P.roleNames(doc).length > 1
      ? h('button', { type: 'button', class: 'danger small', onclick: () => { P.removeRole(doc, role); syncYaml(); drawForm(); showErrors(false); } }, `Remove ${role}`)
      : null;
    return h('fieldset', { class: 'role', dataset: { role } }, h('legend', {}, `Task role: ${role}`),
      h('div', { class: 'row' },
        field('Role name', nameIn),
        field('Instances', num(`${p}.instances`, () => r.instances, (v) => { r.instances = v; }, { min: 1 })),
        field('Image', bound(`${p}.image`, h('input', { autocomplete: 'off', placeholder: 'ubuntu:22.04' }), () => P.imageOf(doc, role), (v) => { P.setImage(doc, role, v.trim()); }), { class: 'grow' })),
      h('div', { class: 'row' },
        field('GPUs', num(`${p}.gpu`, () => res.gpu, (v) => { res.gpu = v; }, { min: 0 })),
        field('CPUs', num(`${p}.cpu`, () => res.cpu, (v) => { res.cpu = v; }, { min: 1 })),
        field('Memory (MB)', num(`${p}.memoryMB`, () => res.memoryMB, (v) => { res.memoryMB = v; }, { min: 1, step: 256 })),
        field('Ports', ports, { hint: 'name:count, …' })),
      field('Commands', cmd, { hint: 'One shell command per line.' }),
      h('div', { class: 'row' },
        field('Min. failed instances', completion('minFailedInstances'), { hint: 'Fail the job after this many failed tasks (-1: never).' }),
        field('Min. succeeded instances', completion('minSucceededInstances'), { hint: 'Succeed after this many (-1: all).' }),
        field('Task retries', num(`${p}.taskRetryCount`, () => r.taskRetryCount, (v) => { r.taskRetryCount = v; }, { min: 0 }))),
      removeBtn);
  }

  function mapField(path, label, key, hint) {
    return field(label, bound(path, h('textarea', { rows: 3, class: 'mono', spellcheck: 'false', placeholder: 'name=value' }),
      () => P.mapToText(doc[key]), (v) => {
        const m = P.parseMap(v);
        if (m === null) return 'Write one name=value per line.';
        if (Object.keys(m).length) doc[key] = m; else delete doc[key];
        return '';
      }), { hint });
  }

  function drawForm() {
    inputs.clear();
    const roles = P.roleNames(doc);
    clear(formBox,
      jobFields(),
      roles.map(roleFields),
      h('div', { class: 'field-error', id: 'roles-err', role: 'alert' }),
      h('button', { type: 'button', onclick: () => { P.addRole(doc); syncYaml(); drawForm(); } }, 'Add task role'),
      h('fieldset', {}, h('legend', {}, 'Parameters and secrets'),
        mapField('parameters', 'Parameters', 'parameters', 'Referenced as <% $parameters.name %>.'),
        mapField('secrets', 'Secrets', 'secrets', 'Referenced as <% $secrets.name %>.')));
  }

  // Shows every validation error next to its field; returns the errors.
  function showErrors(focusFirst) {
    for (const el of inputs.values()) setFieldError(el, '');
    const rolesErr = document.getElementById('roles-err');
    if (rolesErr) rolesErr.textContent = '';
    const errs = P.validate(doc);
    let first = null;
    for (const e of errs) {
      const el = inputs.get(e.path);
      if (el) { setFieldError(el, e.message); first ||= el; } else if (rolesErr) rolesErr.textContent = e.message;
    }
    summary.textContent = errs.length ? `${errs.length} problem(s) to fix before submitting.` : '';
    if (focusFirst && first) first.focus();
    return errs;
  }

  // --- YAML -> document ---------------------------------------------------
  function loadYaml(text, fromEditor) {
    try {
      doc = P.fromYaml(text);
    } catch (e) {
      setYamlError(`YAML error: ${e.message.split('\n')[0]}`);
      return false;
    }
    setYamlError('');
    if (!fromEditor) yamlArea.value = text;
    drawForm();
    showErrors(false);
    return true;
  }
  yamlArea.addEventListener('input', debounce(() => loadYaml(yamlArea.value, true), 400));
  fileIn.addEventListener('change', async () => {
    const f = fileIn.files[0];
    if (!f) return;
    if (f.size > 4 * 1024 * 1024) { toast('That file is larger than 4 MiB.', 'error'); return; }
    if (loadYaml(await f.text(), false)) toast(`Imported ${f.name}.`);
    fileIn.value = '';
  });

  async function submit() {
    if (yamlErr.textContent) { yamlArea.focus(); return; }
    if (showErrors(true).length) return;
    submitBtn.disabled = true;
    try {
      await api.submitJob(P.toYaml(doc));
      toast(`Submitted ${doc.name}.`);
      location.hash = jobHref(session.user, doc.name);
    } catch (e) {
      summary.textContent = `The server refused the job: ${e.message}`;
      if (e.code === 'ConflictJobError') setFieldError(inputs.get('name'), 'A job with this name exists.');
    } finally {
      submitBtn.disabled = false;
    }
  }

  // --- start ----------------------------------------------------------------
  const [vcAnswer, cloneAnswer] = await Promise.allSettled([
    api.vcs(),
    clone ? api.jobConfig(clone.slice(0, clone.indexOf('~')), clone.slice(clone.indexOf('~') + 1)) : Promise.resolve(null)]);
  vcs = vcAnswer.status === 'fulfilled' ? vcList(vcAnswer.value) : [];
  if (clone) {
    if (cloneAnswer.status === 'fulfilled') {
      try {
        const cfg = typeof cloneAnswer.value === 'string' ? P.fromYaml(cloneAnswer.value) : cloneAnswer.value;
        doc = P.cloneJob(cfg);
      } catch (e) { toast(`Could not read that job's YAML: ${e.message}`, 'error'); }
    } else {
      toast(`Could not load ${clone}: ${cloneAnswer.reason.message}`, 'error');
    }
  }
  if (!doc.defaults?.virtualCluster && vcs.length) {
    doc.defaults ||= {};
    doc.defaults.virtualCluster = vcs.some((v) => v.name === 'default') ? 'default' : vcs[0].name;
  }
  drawForm();
  syncYaml();
  main.dataset.ready = 'true';
}
