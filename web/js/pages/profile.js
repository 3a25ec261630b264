// My profile: change my password; my application tokens (create, revoke).
import { api, session } from '../api.js';
import { h, clear, errorBox, field, setFieldError, toast, confirmDialog, fmtTime } from '../ui.js';

function passwordForm() {
  const old = h('input', { type: 'password', autocomplete: 'current-password', name: 'old-password' });
  const nw = h('input', { type: 'password', autocomplete: 'new-password', name: 'new-password' });
  const again = h('input', { type: 'password', autocomplete: 'new-password', name: 'new-password-again' });
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'p-pass' }, h('h2', { id: 'p-pass' }, 'Change password'),
    h('div', { class: 'row' }, field('Current password', old), field('New password', nw), field('New password again', again)),
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Change password')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setFieldError(old, old.value ? '' : 'Enter your current password.');
    setFieldError(nw, nw.value.length >= 6 ? '' : 'At least 6 characters.');
    setFieldError(again, again.value === nw.value ? '' : 'The two new passwords differ.');
    if (!old.value || nw.value.length < 6 || again.value !== nw.value) return;
    try {
      await api.updateMe({ username: session.user, oldPassword: old.value, newPassword: nw.value });
      toast('Password changed.');
      form.reset();
    } catch (err) {
      if (err.code === 'IncorrectPasswordError' || err.status === 400) setFieldError(old, 'This is not your current password.');
      else toast(err.message, 'error');
    }
  });
  return form;
}

async function tokensCard(box) {
  const reload = () => tokensCard(box);
  let tokens = [];
  try {
    const r = await api.tokens();
    tokens = r.detail || (r.tokens || []).map((t) => ({ token: t }));
  } catch (e) { clear(box, errorBox(e)); return; }
  // pai lists token ids ("<id>" of "<id>.<secret>"); OpenPAI lists whole tokens.
  const mineId = session.token.split('.')[0];
  const created = h('div', {});
  const createBtn = h('button', { type: 'button', class: 'primary', onclick: async () => {
    try {
      const r = await api.createAppToken();
      await reload();
      box.prepend(h('div', { class: 'notice', role: 'status' }, 'New application token (copy it now): ', h('code', { class: 'token' }, r.token)));
    } catch (e) { toast(e.message, 'error'); }
  } }, 'Create application token');
  const short = (t) => (t.length > 24 ? `${t.slice(0, 12)}…${t.slice(-8)}` : t);
  clear(box, created, h('p', { class: 'muted' }, 'Application tokens never expire and can do job operations only. Revoke the ones you no longer use.'),
    createBtn,
    tokens.length === 0 ? h('p', { class: 'muted' }, 'No tokens.') : h('div', { class: 'table-wrap' }, h('table', { class: 'grid tokens' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Token'), h('th', {}, 'Kind'), h('th', {}, 'Created'), h('th', {}, 'Expires'), h('th', {}, ''))),
      h('tbody', {}, tokens.map((t) => {
        const tok = t.token;
        const current = tok === session.token || tok === mineId;
        return h('tr', {}, h('td', {}, h('code', {}, short(tok)), current ? ' (this session)' : ''),
          h('td', {}, t.application === undefined ? '–' : t.application ? 'application' : 'login'),
          h('td', {}, fmtTime(t.createdTime)), h('td', {}, t.expireTime ? fmtTime(t.expireTime) : 'never'),
          h('td', {}, current ? null : h('button', { type: 'button', class: 'small danger', onclick: async () => {
            if (!(await confirmDialog('Revoke this token?', 'Revoke'))) return;
            try { await api.revokeToken(tok); toast('Token revoked.'); reload(); } catch (e) { toast(e.message, 'error'); }
          } }, 'Revoke')));
      })))));
}

export async function render(main) {
  const tokBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  let me = null;
  try { me = await api.user(session.user); } catch { /* shown as unknown */ }
  main.append(h('h1', {}, 'My profile'),
    h('section', { class: 'card', 'aria-label': 'Account' }, h('dl', { class: 'facts' },
      h('dt', {}, 'User'), h('dd', {}, session.user),
      h('dt', {}, 'Administrator'), h('dd', {}, session.admin ? 'yes' : 'no'),
      h('dt', {}, 'Email'), h('dd', {}, me?.email || '–'),
      h('dt', {}, 'Virtual clusters'), h('dd', {}, (me?.virtualCluster || []).join(', ') || '–'))),
    passwordForm(),
    h('section', { class: 'card', 'aria-labelledby': 'p-tok' }, h('h2', { id: 'p-tok' }, 'Application tokens'), tokBox));
  await tokensCard(tokBox);
}
