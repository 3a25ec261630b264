// My profile: change my password; my notification settings (the user's
// `notification` field, docs/api.md "Notifications"); my application tokens
// (create, revoke).
import { api, session } from '../api.js';
import { h, clear, errorBox, field, setFieldError, toast, confirmDialog, fmtTime, uid } from '../ui.js';

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

// The events a job's owner can be told of, and the server's default `on`.
const EVENTS = [['running', 'running (every task placed)'], ['succeeded', 'succeeded'], ['failed', 'failed'],
  ['stopped', 'stopped'], ['retried', 'retried (an attempt ended, the job waits for the next)'],
  ['waiting', 'waiting too long'], ['idle', 'holding idle GPUs']];
const DEFAULT_ON = ['succeeded', 'failed', 'stopped'];

// My notification settings: the default of my jobs that have no extras.notify.
function notifyForm(me) {
  const n = me?.notification || null;
  const on = new Set(n?.on || DEFAULT_ON);
  const email = h('input', { type: 'checkbox', id: 'notify-email', name: 'notify-email', checked: n ? n.email !== false : true });
  const hook = h('input', { type: 'url', name: 'notify-webhook', class: 'mono', value: n?.webhook || '', placeholder: 'https://hooks.example.com/pai' });
  const boxes = EVENTS.map(([ev, label]) => {
    const c = h('input', { type: 'checkbox', name: 'notify-on', value: ev, id: uid('ev'), checked: on.has(ev) });
    return h('label', { class: 'check', for: c.id }, c, ` ${label}`);
  });
  const events = h('fieldset', { id: 'notify-on', class: 'notify-on', 'aria-describedby': 'notify-on-err' }, h('legend', {}, 'Tell me when a job'),
    boxes, h('div', { class: 'field-error', id: 'notify-on-err', role: 'alert' }));
  const state = h('p', { class: 'muted', id: 'notify-state' }, n ? '' : 'You have no settings yet: what is shown is the default.');
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'p-notify' }, h('h2', { id: 'p-notify' }, 'Notifications'),
    h('p', { class: 'muted' }, 'What you are told of your jobs that do not say (a job\'s extras.notify comes first).'), state,
    h('div', { class: 'field' }, h('label', { class: 'check', for: email.id }, email,
      me?.email ? ` E-mail me at ${me.email}` : ' E-mail me (your profile has no e-mail address: ask an administrator)')),
    field('Webhook URL', hook, { hint: 'POSTed as JSON; the server allows only the hosts its administrator listed. Empty: none.' }),
    events,
    h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Save notification settings')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setFieldError(hook, '');
    setFieldError(events, '');
    const url = hook.value.trim();
    const data = { email: email.checked, on: EVENTS.map(([ev]) => ev).filter((ev, i) => boxes[i].querySelector('input').checked) };
    if (url) data.webhook = url;
    try {
      await api.updateMe({ notification: data });
      state.textContent = '';
      toast('Notification settings saved.');
    } catch (err) {
      // The server names the field: "notification.webhook: ...", "notification.on[2]: ...".
      const msg = err.message || String(err);
      if (/^notification\.webhook/.test(msg)) setFieldError(hook, msg.replace(/^notification\.webhook:\s*/, ''));
      else if (/^notification\.on/.test(msg)) setFieldError(events, msg.replace(/^notification\.on(\[\d+\])?:\s*/, ''));
      else toast(msg, 'error');
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
    notifyForm(me),
    h('section', { class: 'card', 'aria-labelledby': 'p-tok' }, h('h2', { id: 'p-tok' }, 'Application tokens'), tokBox));
  await tokensCard(tokBox);
}
