// Publish a template, or edit one (#/templates/publish?edit=owner~name).
// The protocol comes from a job that ran (?job=user~name: its config, as the
// job page's "Publish as template" opens it), a file, or is pasted. The
// server checks it as a submission and refuses secrets unless "remove
// secrets" is ticked (then it says what it removed).
import { api } from '../api.js';
import { h, field, setFieldError, toast, uid, errorBox } from '../ui.js';
import { templateHref } from './templates.js';

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

function jobName(yamlText) {
  const m = /^name:\s*['"]?([A-Za-z0-9_-]+)/m.exec(yamlText || '');
  return m ? m[1] : '';
}

export async function render(main, { query }) {
  const editId = query.get('edit');
  const fromJob = query.get('job');
  let t = null;
  let protocol = '';
  const [tAns, gAns, jAns] = await Promise.allSettled([
    editId ? api.template(editId) : Promise.resolve(null),
    api.groups(),
    fromJob ? api.jobConfig(fromJob.slice(0, fromJob.indexOf('~')), fromJob.slice(fromJob.indexOf('~') + 1)) : Promise.resolve(null)]);
  if (editId) {
    if (tAns.status !== 'fulfilled') { main.append(h('h1', {}, 'Edit a template'), errorBox(tAns.reason)); return null; }
    t = tAns.value;
    protocol = t.protocol;
  } else if (fromJob) {
    if (jAns.status === 'fulfilled') protocol = typeof jAns.value === 'string' ? jAns.value : JSON.stringify(jAns.value, null, 1);
    else toast(`Could not load the job ${fromJob}: ${jAns.reason.message}`, 'error');
  }
  const groups = gAns.status === 'fulfilled' ? (gAns.value || []).map((g) => g.groupname).filter((g) => g !== 'admingroup') : [];

  const nameIn = h('input', { name: 'tpl-name', value: t ? t.name : jobName(protocol), autocomplete: 'off', disabled: !!t });
  const titleIn = h('input', { name: 'tpl-title', value: t ? t.title : '', maxlength: '200' });
  const descIn = h('textarea', { name: 'tpl-description', rows: '4', maxlength: '8192' });
  descIn.value = t ? t.description : '';
  const tagsIn = h('input', { name: 'tpl-tags', value: t ? (t.tags || []).join(', ') : '', placeholder: 'vision, pytorch' });
  const imageIn = h('input', { name: 'tpl-image', value: t ? t.image : '', placeholder: "default: the job's docker image", class: 'mono' });
  const vis = t ? t.visibility : 'private';
  const radio = (value, label) => {
    const r = h('input', { type: 'radio', name: 'tpl-visibility', value, id: uid('vis'), checked: vis === value });
    r.addEventListener('change', () => { groupBox.hidden = value !== 'groups' && r.checked; });
    return h('label', { class: 'check', for: r.id }, r, ` ${label}`);
  };
  const groupChecks = groups.map((g) => {
    const c = h('input', { type: 'checkbox', name: 'tpl-group', value: g, id: uid('grp'), checked: !!(t && (t.groups || []).includes(g)) });
    return h('label', { class: 'check', for: c.id }, c, ` ${g}`);
  });
  const groupBox = h('fieldset', { class: 'tpl-groups', hidden: vis !== 'groups' }, h('legend', {}, 'Groups'),
    groupChecks.length ? groupChecks : h('p', { class: 'muted' }, 'There are no groups to share with.'));
  const protoIn = h('textarea', { id: 'tpl-protocol', name: 'tpl-protocol', class: 'mono', rows: '18', spellcheck: 'false' });
  protoIn.value = protocol;
  const fileIn = h('input', { type: 'file', accept: '.yaml,.yml,text/yaml', 'aria-label': 'Import a job file' });
  const strip = h('input', { type: 'checkbox', name: 'tpl-strip', id: uid('strip') });
  const summary = h('p', { class: 'form-error', id: 'tpl-error', role: 'alert' });
  const saveBtn = h('button', { type: 'submit', class: 'primary' }, t ? 'Save' : 'Publish');
  const form = h('form', { class: 'card tpl-publish', novalidate: true },
    field('Name', nameIn, { hint: t ? "a template's name does not change" : 'its id is yours~name; default: the job name' }),
    field('Title', titleIn),
    field('Description', descIn),
    field('Tags', tagsIn, { hint: 'separated by commas' }),
    field('Image', imageIn),
    h('fieldset', { class: 'tpl-visibility' }, h('legend', {}, 'Shared with'),
      radio('private', 'only me (and admins)'), radio('groups', 'members of groups'), radio('public', 'everyone')),
    groupBox,
    field('Job protocol (YAML)', protoIn, { hint: 'OpenPAI job protocol v2; a template may hold no secrets' }),
    h('div', { class: 'toolbar' }, fileIn,
      h('label', { class: 'check', for: strip.id }, strip, ' Remove secrets (a secrets section, registry passwords) instead of refusing')),
    summary,
    h('div', { class: 'actions' }, saveBtn,
      h('a', { class: 'button', href: t ? templateHref(t.id) : '#/templates' }, 'Cancel')));
  main.append(h('div', { class: 'page-head' }, h('h1', {}, t ? `Edit ${t.title}` : 'Publish a template')),
    fromJob ? h('p', { class: 'muted' }, `From the job ${fromJob} (its config; secrets are shown masked and must be removed).`) : null,
    form);

  fileIn.addEventListener('change', async () => {
    const f = fileIn.files[0];
    if (!f) return;
    if (f.size > 256 * 1024) { toast('A template is at most 256 KiB.', 'error'); return; }
    protoIn.value = await f.text();
    if (!t && !nameIn.value) nameIn.value = jobName(protoIn.value);
    fileIn.value = '';
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    summary.textContent = '';
    setFieldError(nameIn, '');
    setFieldError(protoIn, '');
    const name = nameIn.value.trim() || jobName(protoIn.value);
    if (!t && !NAME_RE.test(name)) { setFieldError(nameIn, 'Letters, digits, - and _ (at most 64).'); nameIn.focus(); return; }
    if (!protoIn.value.trim()) { setFieldError(protoIn, 'Paste or import a job protocol.'); protoIn.focus(); return; }
    const visibility = form.querySelector('input[name=tpl-visibility]:checked')?.value || 'private';
    const body = {
      title: titleIn.value.trim() || undefined,
      description: descIn.value,
      tags: tagsIn.value,
      image: imageIn.value.trim() || undefined,
      visibility,
      groups: visibility === 'groups' ? [...form.querySelectorAll('input[name=tpl-group]:checked')].map((c) => c.value) : undefined,
      stripSecrets: strip.checked,
    };
    if (!t || protoIn.value !== t.protocol) body.protocol = protoIn.value;
    if (!t) body.name = name;
    saveBtn.disabled = true;
    try {
      const ans = t ? await api.updateTemplate(t.id, body) : await api.publishTemplate(body);
      for (const w of ans.warnings || []) toast(w, 'info');
      toast(t ? 'Saved.' : `Published ${ans.id}.`);
      location.hash = templateHref(ans.id);
    } catch (e) {
      summary.textContent = e.message;
      if (e.code === 'InvalidProtocolError' || /secret/i.test(e.message)) setFieldError(protoIn, 'See the problem below.');
      if (e.code === 'ConflictTemplateError') setFieldError(nameIn, 'You have a template of this name.');
    } finally {
      saveBtn.disabled = false;
    }
  });
  main.dataset.ready = 'true';
  return null;
}
