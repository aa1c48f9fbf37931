// Log in, or (first run, from the machine Vigil runs on) create the first administrator.

import * as api from '../api.js';
import { field, h } from '../dom.js';

export async function render(main, params, ctx) {
  let setup = null;
  if (params.setup) {
    try { setup = await api.get('/api/setup'); } catch (_) { setup = null; }
    if (setup && !setup.required) { location.hash = '#/login'; return null; }
  }
  const creating = !!(setup && setup.required);
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 128, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: creating ? 'new-password' : 'current-password', required: true, maxlength: 1024 });
  const pass2 = creating ? h('input', { name: 'password2', type: 'password', autocomplete: 'new-password', required: true }) : null;
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary', text: creating ? 'Create administrator' : 'Log in' });
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', { text: creating ? 'Welcome to Vigil' : 'Log in to Vigil' }),
    creating ? h('p', { class: 'muted', text: 'No administrator exists yet. Choose the user name and password of the first one (a long passphrase is best).' }) : null,
    field('User name', user),
    field('Password', pass, creating ? 'At least 12 characters; not a common password.' : null),
    pass2 ? field('Password again', pass2) : null,
    error,
    h('div', { class: 'row end' }, submit));

  if (setup && setup.required && !setup.allowed_here) {
    main.append(h('div', { class: 'card narrow' },
      h('h1', { text: 'Set-up needed' }),
      h('p', { text: 'No administrator exists yet. For safety the first one can only be created from the machine Vigil runs on: open this page there (http://localhost…), or run:' }),
      h('pre', { class: 'mono', text: 'vigil user add --admin <name>' })));
    return null;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!user.value.trim() || !pass.value) { error.textContent = 'Enter a user name and a password.'; return; }
    if (pass2 && pass.value !== pass2.value) { error.textContent = 'The two passwords differ.'; return; }
    submit.disabled = true;
    try {
      const body = { username: user.value.trim(), password: pass.value };
      const session = await api.post(creating ? '/api/setup' : '/api/auth/login', body);
      pass.value = '';
      await ctx.login(session);
      location.hash = '#/';
    } catch (err) {
      error.textContent = err.status === 401 ? 'Wrong user name or password.' : err.message;
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  user.focus();
  return null;
}
