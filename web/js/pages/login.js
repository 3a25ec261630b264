// Login: username and password against /api/v2/authn/basic/login.
import { api, session } from '../api.js';
import { h, field, setFieldError } from '../ui.js';

export function render(main, { query }) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { class: 'form-error', role: 'alert' });
  const btn = h('button', { class: 'primary', type: 'submit' }, 'Log in');
  const form = h('form', { class: 'login card', novalidate: true },
    h('h1', {}, 'Log in to pai'),
    field('User name', user), field('Password', pass), msg, btn);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setFieldError(user, user.value ? '' : 'Enter your user name.');
    setFieldError(pass, pass.value ? '' : 'Enter your password.');
    if (!user.value || !pass.value) return;
    btn.disabled = true;
    msg.textContent = '';
    try {
      const r = await api.login(user.value, pass.value);
      session.set(r.token, r.user || user.value, !!r.admin);
      const next = query.get('next');
      location.hash = `#${next && next.startsWith('/') && !next.startsWith('/login') ? next : '/'}`;
    } catch (e) {
      msg.textContent = e.status === 400 || e.status === 401 || e.status === 404
        ? 'Wrong user name or password.' : `Login failed: ${e.message}`;
      pass.select();
    } finally {
      btn.disabled = false;
    }
  });
  main.append(form);
  if (session.loggedIn) main.prepend(h('p', { class: 'muted' }, `Logged in as ${session.user}. `, h('a', { href: '#/' }, 'Go to the dashboard')));
  user.focus();
}
