// Admin: users (create, edit, delete, groups), groups with their ACLs
// (create, edit, delete) and virtual clusters (create, resize, delete).
// app.js shows non-admins a refusal before this module runs; the server
// refuses their calls as well.
import { api } from '../api.js';
import { h, clear, errorBox, field, setFieldError, toast, confirmDialog, usageBar } from '../ui.js';
import { vcList, vcGpus } from '../model.js';

const TABS = [['users', 'Users'], ['groups', 'Groups'], ['vcs', 'Virtual clusters']];
const list = (s) => String(s || '').split(',').map((x) => x.trim()).filter(Boolean);

function tabBar(active) {
  return h('nav', { class: 'tabs', 'aria-label': 'Administration' }, TABS.map(([k, label]) =>
    h('a', { href: `#/admin/${k}`, class: k === active ? 'active' : '', 'aria-current': k === active ? 'page' : null }, label)));
}

async function run(fn, ok, reload) {
  try { await fn(); if (ok) toast(ok); reload(); return true; } catch (e) { toast(e.message, 'error'); return false; }
}

// --- users -----------------------------------------------------------------
function userEditor(u, reload) {
  const admin = h('input', { type: 'checkbox', checked: !!u.admin, id: `adm-${u.username}` });
  const email = h('input', { type: 'email', value: u.email || '' });
  const vcs = h('input', { value: (u.virtualCluster || []).join(', ') });
  const groups = h('input', { value: (u.grouplist || []).join(', ') });
  const pass = h('input', { type: 'password', autocomplete: 'new-password', placeholder: 'unchanged' });
  const form = h('form', { class: 'inline-edit', novalidate: true },
    h('div', { class: 'row' }, field('Email', email), field('Virtual clusters', vcs, { hint: 'comma separated' }),
      field('Groups', groups, { hint: 'comma separated' }), field('New password', pass)),
    h('label', { class: 'check', for: admin.id }, admin, ' Administrator'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Save'),
      h('button', { type: 'button', onclick: () => reload() }, 'Cancel')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (pass.value && pass.value.length < 6) { setFieldError(pass, 'At least 6 characters.'); return; }
    const data = { username: u.username, email: email.value, admin: admin.checked, virtualCluster: list(vcs.value) };
    if (pass.value) data.password = pass.value;
    await run(async () => {
      await api.updateUser(data);
      const g = list(groups.value);
      if (g.join() !== (u.grouplist || []).join()) await api.setUserGroups(u.username, g);
    }, `Saved ${u.username}.`, reload);
  });
  return form;
}

async function usersTab(box) {
  const reload = () => usersTab(box);
  let users;
  try { users = await api.users(); } catch (e) { clear(box, errorBox(e)); return; }
  const name = h('input', { autocomplete: 'off', name: 'new-username' });
  const pass = h('input', { type: 'password', autocomplete: 'new-password', name: 'new-password' });
  const email = h('input', { type: 'email', name: 'new-email' });
  const vcs = h('input', { value: 'default', name: 'new-vcs' });
  const admin = h('input', { type: 'checkbox', id: 'new-admin' });
  const create = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'u-new' }, h('h2', { id: 'u-new' }, 'New user'),
    h('div', { class: 'row' }, field('User name', name), field('Password', pass), field('Email', email),
      field('Virtual clusters', vcs, { hint: 'comma separated' })),
    h('label', { class: 'check', for: 'new-admin' }, admin, ' Administrator'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Create user')));
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    const badName = /^[a-zA-Z0-9_-]{1,64}$/.test(name.value) ? '' : 'Letters, digits, _ and - only.';
    const badPass = pass.value.length >= 6 ? '' : 'At least 6 characters.';
    setFieldError(name, badName);
    setFieldError(pass, badPass);
    if (badName || badPass) return;
    await run(() => api.createUser({ username: name.value, password: pass.value, email: email.value, admin: admin.checked, virtualCluster: list(vcs.value) }),
      `Created user ${name.value}.`, reload);
  });
  const rows = (Array.isArray(users) ? users : []).map((u) => {
    const tr = h('tr', { dataset: { user: u.username } },
      h('td', {}, u.username), h('td', {}, u.admin ? 'yes' : 'no'), h('td', {}, u.email || '–'),
      h('td', {}, (u.virtualCluster || []).join(', ') || '–'), h('td', {}, (u.grouplist || []).join(', ') || '–'),
      h('td', { class: 'nowrap' },
        h('button', { type: 'button', class: 'small', onclick: () => { tr.after(h('tr', { class: 'editor' }, h('td', { colspan: 6 }, userEditor(u, reload)))); } }, 'Edit'), ' ',
        h('button', { type: 'button', class: 'small danger', onclick: async () => {
          if (await confirmDialog(`Delete user ${u.username}?`, 'Delete')) run(() => api.deleteUser(u.username), `Deleted ${u.username}.`, reload);
        } }, 'Delete')));
    return tr;
  });
  clear(box, create, h('section', { class: 'card', 'aria-label': 'Users' }, h('div', { class: 'table-wrap' }, h('table', { class: 'grid users' },
    h('thead', {}, h('tr', {}, ['User', 'Admin', 'Email', 'Virtual clusters', 'Groups', ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows)))));
}

// --- groups ----------------------------------------------------------------
const acls = (g) => g.extension?.acls || {};

function groupForm(g, reload) {
  const editing = !!g;
  const name = h('input', { value: g?.groupname || '', disabled: editing, autocomplete: 'off', name: 'groupname' });
  const desc = h('input', { value: g?.description || '', name: 'description' });
  const vcs = h('input', { value: (acls(g || {}).virtualClusters || []).join(', '), name: 'acl-vcs' });
  const admin = h('input', { type: 'checkbox', checked: !!acls(g || {}).admin, id: `gadm-${g?.groupname || 'new'}` });
  const form = h('form', { class: editing ? 'inline-edit' : 'card', novalidate: true },
    editing ? null : h('h2', {}, 'New group'),
    h('div', { class: 'row' }, field('Group name', name), field('Description', desc),
      field('ACL: virtual clusters', vcs, { hint: 'members may use these (comma separated)' })),
    h('label', { class: 'check', for: admin.id }, admin, ' ACL: members are administrators'),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, editing ? 'Save' : 'Create group'),
      editing ? h('button', { type: 'button', onclick: () => reload() }, 'Cancel') : null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const bad = /^[a-zA-Z0-9_-]{1,64}$/.test(name.value) ? '' : 'Letters, digits, _ and - only.';
    setFieldError(name, bad);
    if (bad) return;
    const body = { groupname: name.value, description: desc.value, externalName: g?.externalName || name.value,
      extension: { ...(g?.extension || {}), acls: { ...acls(g || {}), admin: admin.checked, virtualClusters: list(vcs.value) } } };
    await run(() => (editing ? api.updateGroup(body) : api.createGroup(body)), `${editing ? 'Saved' : 'Created'} group ${name.value}.`, reload);
  });
  return form;
}

async function groupsTab(box) {
  const reload = () => groupsTab(box);
  let groups;
  try { groups = await api.groups(); } catch (e) { clear(box, errorBox(e)); return; }
  const rows = (Array.isArray(groups) ? groups : []).map((g) => {
    const tr = h('tr', { dataset: { group: g.groupname } },
      h('td', {}, g.groupname), h('td', {}, g.description || '–'), h('td', {}, acls(g).admin ? 'yes' : 'no'),
      h('td', {}, (acls(g).virtualClusters || []).join(', ') || '–'),
      h('td', { class: 'nowrap' },
        h('button', { type: 'button', class: 'small', onclick: () => tr.after(h('tr', { class: 'editor' }, h('td', { colspan: 5 }, groupForm(g, reload)))) }, 'Edit'), ' ',
        h('button', { type: 'button', class: 'small danger', onclick: async () => {
          if (await confirmDialog(`Delete group ${g.groupname}?`, 'Delete')) run(() => api.deleteGroup(g.groupname), `Deleted ${g.groupname}.`, reload);
        } }, 'Delete')));
    return tr;
  });
  clear(box, groupForm(null, reload), h('section', { class: 'card', 'aria-label': 'Groups' }, h('div', { class: 'table-wrap' }, h('table', { class: 'grid groups' },
    h('thead', {}, h('tr', {}, ['Group', 'Description', 'Admin ACL', 'VC ACL', ''].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows)))));
}

// --- virtual clusters ------------------------------------------------------
// pai changes VCs by their HiveD virtual cells: {virtualCells: [{cellType,
// cellNumber}]} (docs/api.md). The cell type names a cell type of the
// scheduler config (e.g. A100-NODE); one field serves create and resize.
const cellsBody = (cellType, n) => ({ virtualCells: [{ cellType, cellNumber: n }] });

async function vcsTab(box) {
  const reload = () => vcsTab(box);
  let vcs;
  try { vcs = vcList(await api.vcs()); } catch (e) { clear(box, errorBox(e)); return; }
  const name = h('input', { autocomplete: 'off', name: 'vc-name' });
  const cellType = h('input', { autocomplete: 'off', name: 'vc-cell-type', value: sessionStorage.getItem('pai-cell-type') || '', placeholder: 'e.g. A100-NODE' });
  const cells = h('input', { type: 'number', min: 0, value: 1, name: 'vc-cells' });
  const checkType = () => {
    const bad = cellType.value.trim() ? '' : 'The cell type from the scheduler config.';
    setFieldError(cellType, bad);
    if (!bad) sessionStorage.setItem('pai-cell-type', cellType.value.trim());
    return !bad;
  };
  const create = h('form', { class: 'card', novalidate: true }, h('h2', {}, 'New virtual cluster'),
    h('div', { class: 'row' }, field('Name', name), field('Cell type', cellType, { hint: 'a cell type of the HiveD config; also used by Resize' }),
      field('Cells', cells, { hint: 'how many cells of that type are guaranteed' })),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Create virtual cluster')));
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    const badName = /^[a-zA-Z0-9_-]{1,64}$/.test(name.value) ? '' : 'Letters, digits, _ and - only.';
    const n = Number(cells.value);
    const badCells = Number.isInteger(n) && n >= 1 ? '' : 'A whole number, 1 or more.';
    setFieldError(name, badName);
    setFieldError(cells, badCells);
    const okType = checkType();
    if (badName || badCells || !okType) return;
    if (vcs.some((v) => v.name === name.value)) { setFieldError(name, 'That virtual cluster exists.'); return; }
    await run(() => api.putVc(name.value, cellsBody(cellType.value.trim(), n)), `Created ${name.value}.`, reload);
  });
  const rows = vcs.map((v) => {
    const g = vcGpus(v);
    const size = h('input', { type: 'number', min: 0, value: 1, 'aria-label': `Cells of ${v.name}`, class: 'narrow' });
    return h('tr', { dataset: { vc: v.name } }, h('td', {}, v.name), h('td', {}, usageBar(g.used, g.total, g.guaranteed)),
      h('td', { class: 'num' }, `${g.used} / ${g.guaranteed} / ${g.total}`),
      h('td', { class: 'num' }, `${v.runningJobs ?? '–'} / ${v.waitingJobs ?? '–'}`),
      h('td', { class: 'nowrap' }, size, ' ',
        h('button', { type: 'button', class: 'small', onclick: () => {
          const n = Number(size.value);
          if (!Number.isInteger(n) || n < 0) { toast('Cells must be a whole number, 0 or more.', 'error'); return; }
          if (!checkType()) { cellType.focus(); return; }
          run(() => api.putVc(v.name, cellsBody(cellType.value.trim(), n)), `Resized ${v.name} to ${n} cell(s).`, reload);
        } }, 'Resize'), ' ',
        h('button', { type: 'button', class: 'small danger', onclick: async () => {
          if (await confirmDialog(`Delete virtual cluster ${v.name}?`, 'Delete')) run(() => api.deleteVc(v.name), `Deleted ${v.name}.`, reload);
        } }, 'Delete')));
  });
  clear(box, create, h('section', { class: 'card', 'aria-label': 'Virtual clusters' }, h('div', { class: 'table-wrap' }, h('table', { class: 'grid vcs' },
    h('thead', {}, h('tr', {}, ['VC', 'GPU use', 'GPUs used / guaranteed / total', 'Jobs running / waiting', 'Resize to cells'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows)))));
}

const TAB_FNS = { users: usersTab, groups: groupsTab, vcs: vcsTab };

export async function render(main, { params }) {
  const tab = params[0] || 'users';
  const box = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('h1', {}, 'Administration'), tabBar(tab), box);
  await TAB_FNS[tab](box);
}
