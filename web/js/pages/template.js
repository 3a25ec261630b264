// Template detail: what it is, who shares it with whom, how often it was
// used, its parameters and the whole job protocol; "Use this template" (the
// submit form), and for its owner and admins edit, share and delete; admins
// also feature it (shown to new users).
import { api, session } from '../api.js';
import { h, clear, errorBox, fmtTime, toast, confirmDialog, download } from '../ui.js';
import { templateHref, visibilityBadge, tagChips } from './templates.js';

function dl(rows) {
  return h('dl', { class: 'kv-list' }, rows.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function paramTable(params) {
  const keys = Object.keys(params || {});
  if (!keys.length) return h('p', { class: 'muted' }, 'This template declares no parameters.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid params' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Parameter'), h('th', {}, 'Default'))),
    h('tbody', {}, keys.map((k) => h('tr', {}, h('td', { class: 'mono' }, k),
      h('td', { class: 'mono' }, typeof params[k] === 'object' ? JSON.stringify(params[k]) : String(params[k])))))));
}

export async function render(main, { params }) {
  const [id] = params;
  let t;
  try {
    t = await api.template(id);
  } catch (e) {
    main.append(h('h1', {}, 'Template'), errorBox(e), h('p', {}, h('a', { href: '#/templates' }, 'Back to the templates')));
    return null;
  }
  main.dataset.template = t.id;
  const act = (label, cls, fn) => h('button', { type: 'button', class: cls, onclick: fn }, label);
  async function doDelete() {
    if (!(await confirmDialog(`Delete the template ${t.title}? Jobs submitted from it are kept.`, 'Delete'))) return;
    try { await api.deleteTemplate(t.id); toast(`Deleted ${t.title}.`); location.hash = '#/templates'; } catch (e) { toast(e.message, 'error'); }
  }
  async function doFeature() {
    try {
      await api.featureTemplate(t.id, !t.featured);
      toast(t.featured ? 'No longer featured.' : 'Featured: shown to new users.');
      t = await api.template(t.id);
      draw();
    } catch (e) { toast(e.message, 'error'); }
  }
  function draw() {
    clear(main,
      h('div', { class: 'page-head' },
        h('h1', {}, t.title, t.featured ? h('span', { class: 'badge featured' }, '★ featured') : null),
        h('div', { class: 'actions' },
          h('a', { class: 'button primary', href: `${templateHref(t.id)}/submit` }, 'Use this template'),
          t.canEdit ? h('a', { class: 'button', href: `#/templates/publish?edit=${encodeURIComponent(t.id)}` }, 'Edit') : null,
          session.admin && t.visibility === 'public' ? act(t.featured ? 'Unfeature' : 'Feature', '', doFeature) : null,
          act('Download YAML', '', () => download(`${t.name}.yaml`, t.protocol)),
          t.canEdit ? act('Delete', 'danger', doDelete) : null)),
      h('div', { class: 'cards' },
        h('section', { class: 'card', 'aria-label': 'About' },
          t.description ? h('p', { class: 'tpl-desc' }, t.description) : h('p', { class: 'muted' }, 'No description.'),
          dl([
            ['Id', h('span', { class: 'mono' }, t.id)],
            ['Owner', t.owner],
            ['Shared with', visibilityBadge(t)],
            ['Used', h('span', { id: 'tpl-uses' }, `${t.useCount} ${t.useCount === 1 ? 'time' : 'times'}`)],
            ['Image', h('span', { class: 'mono' }, t.image || '–')],
            ['Job name', h('span', { class: 'mono' }, t.jobName)],
            ['Tags', (t.tags || []).length ? tagChips(t.tags) : '–'],
            ['Published', fmtTime(t.createdTime)],
            ['Changed', fmtTime(t.updatedTime)],
          ])),
        h('section', { class: 'card', 'aria-labelledby': 't-params' }, h('h2', { id: 't-params' }, 'Parameters'), paramTable(t.parameters))),
      h('section', { class: 'card yaml-card', 'aria-labelledby': 't-yaml' }, h('h2', { id: 't-yaml' }, 'Job protocol'),
        h('pre', { class: 'yaml', id: 'tpl-yaml', tabindex: '0' }, t.protocol)));
  }
  draw();
  return null;
}
