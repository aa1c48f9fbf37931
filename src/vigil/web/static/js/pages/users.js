// Users and roles (administrators): accounts, roles, per-camera permissions, passwords.

import * as api from '../api.js';
import { field, fmtWall, h, modal, toast } from '../dom.js';

const ACTIONS = ['view_live', 'view_recordings', 'export', 'configure'];
const ACTION_LABELS = { view_live: 'Live', view_recordings: 'Recordings', export: 'Export', configure: 'Configure' };

function grantsSummary(user) {
  if (user.role === 'admin') return 'All cameras (administrator)';
  const g = user.grants || [];
  if (!g.length) return 'No cameras';
  return g.map((x) => `${x.camera === '*' ? 'all cameras' : x.camera}: ${ACTIONS.filter((a) => x[a]).map((a) => ACTION_LABELS[a]).join(', ') || 'nothing'}`).join('; ');
}

function grantsEditor(ctx, grants, role) {
  const rows = [{ camera: '*', title: 'Every camera' }, ...ctx.cameras.map((c) => ({ camera: c.name, title: c.title || c.name }))];
  const boxes = {};
  const body = h('tbody', {}, rows.map((r) => {
    const current = grants.find((g) => g.camera === r.camera) || {};
    boxes[r.camera] = {};
    return h('tr', {}, h('td', { text: r.title }), ACTIONS.map((a) => {
      const disabledByRole = role === 'viewer' && (a === 'export' || a === 'configure');
      const cb = h('input', { type: 'checkbox', '.checked': !!current[a], disabled: disabledByRole, 'aria-label': `${ACTION_LABELS[a]} on ${r.title}` });
      boxes[r.camera][a] = cb;
      return h('td', {}, cb);
    }));
  }));
  const table = h('table', { class: 'grants' }, h('thead', {}, h('tr', {}, h('th', { text: 'Camera' }), ACTIONS.map((a) => h('th', { text: ACTION_LABELS[a] })))), body);
  const value = () => Object.entries(boxes)
    .map(([camera, cbs]) => ({ camera, ...Object.fromEntries(ACTIONS.map((a) => [a, cbs[a].checked])) }))
    .filter((g) => ACTIONS.some((a) => g[a]));
  return { el: h('div', { class: 'table-wrap' }, table), value };
}

export async function render(main, _params, ctx) {
  await ctx.refreshCameras();
  const tbody = h('tbody');
  const addBtn = h('button', { type: 'button', class: 'primary', text: 'Add user…' });
  main.append(h('div', { class: 'toolbar' }, h('h1', { text: 'Users and roles' }), h('span', { class: 'spacer' }), addBtn));
  let roles = [];
  try { roles = (await api.get('/api/roles')).roles; } catch (_) { roles = []; }
  if (roles.length) {
    main.append(h('div', { class: 'card' }, h('h2', { text: 'Roles' }),
      h('ul', {}, roles.map((r) => h('li', {}, h('strong', { text: r.name }), ` — ${r.description}`)))));
  }
  main.append(h('div', { class: 'card table-wrap' }, h('table', { id: 'users' },
    h('thead', {}, h('tr', {}, ['User', 'Role', 'Cameras', 'State', ''].map((t) => h('th', { text: t })))), tbody)));

  async function load() {
    const res = await api.get('/api/users');
    tbody.replaceChildren(...res.users.map((u) => {
      const actions = h('td', {}, h('div', { class: 'row' },
        h('button', { type: 'button', text: 'Permissions…', on: { click: () => editGrants(u) } }),
        h('button', { type: 'button', text: 'Role…', on: { click: () => editRole(u) } }),
        h('button', { type: 'button', text: 'Password…', on: { click: () => setPassword(u) } }),
        h('button', { type: 'button', text: u.disabled ? 'Enable' : 'Disable', on: { click: () => toggle(u) } }),
        u.username === ctx.me.username ? null : h('button', { type: 'button', class: 'danger', text: 'Delete', on: { click: () => remove(u) } })));
      return h('tr', { dataset: { user: u.username } },
        h('td', {}, h('strong', { text: u.username }), h('br'), h('small', { class: 'muted', text: `since ${fmtWall(u.created_us, { date: true })}` })),
        h('td', { text: u.role }), h('td', { text: grantsSummary(u) }),
        h('td', {}, h('span', { class: `pill ${u.disabled ? 'bad' : 'ok'}`, text: u.disabled ? 'disabled' : 'active' })), actions);
    }));
  }

  const run = async (fn, ok) => {
    try { await fn(); if (ok) toast(ok, 'ok'); await load(); return true; } catch (err) { toast(err.message, 'error'); return false; }
  };

  addBtn.addEventListener('click', () => {
    const { body, close } = modal('Add user');
    const user = h('input', { autocomplete: 'off', maxlength: 64, required: true });
    const pass = h('input', { type: 'password', autocomplete: 'new-password', required: true });
    const role = h('select', {}, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r, text: r })));
    const grants = grantsEditor(ctx, [], 'viewer');
    const holder = h('div', {}, grants.el);
    let current = grants;
    role.addEventListener('change', () => { current = grantsEditor(ctx, current.value(), role.value); holder.replaceChildren(current.el); });
    const error = h('p', { class: 'error-text', role: 'alert' });
    const form = h('form', {}, field('User name', user), field('Initial password', pass, 'At least 12 characters.'),
      field('Role', role), h('h2', { text: 'Camera permissions' }), holder, error,
      h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'primary', text: 'Create' })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api.post('/api/users', { username: user.value.trim(), password: pass.value, role: role.value, grants: role.value === 'admin' ? [] : current.value() });
        close();
        toast('User created.', 'ok');
        await load();
      } catch (err) { error.textContent = err.message; }
    });
    body.append(form);
    user.focus();
  });

  function editGrants(u) {
    const { body, close } = modal(`Permissions — ${u.username}`);
    if (u.role === 'admin') body.append(h('p', { class: 'muted', text: 'Administrators may do everything on every camera; grants have no effect.' }));
    const ed = grantsEditor(ctx, u.grants || [], u.role);
    body.append(ed.el, h('div', { class: 'row end' }, h('button', { type: 'button', class: 'primary', text: 'Save', on: { click: async () => {
      if (await run(() => api.put(`/api/users/${encodeURIComponent(u.username)}/permissions`, { grants: ed.value() }), 'Permissions saved.')) close();
    } } })));
  }

  function editRole(u) {
    const { body, close } = modal(`Role — ${u.username}`);
    const role = h('select', {}, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r, text: r, selected: r === u.role })));
    body.append(field('Role', role), h('div', { class: 'row end' }, h('button', { type: 'button', class: 'primary', text: 'Save', on: { click: async () => {
      if (await run(() => api.patch(`/api/users/${encodeURIComponent(u.username)}`, { role: role.value }), 'Role changed.')) close();
    } } })));
  }

  function setPassword(u) {
    const { body, close } = modal(`New password — ${u.username}`);
    const pass = h('input', { type: 'password', autocomplete: 'new-password' });
    body.append(field('New password', pass, 'Ends all of this user\'s sessions.'), h('div', { class: 'row end' }, h('button', { type: 'button', class: 'primary', text: 'Set password', on: { click: async () => {
      if (await run(() => api.put(`/api/users/${encodeURIComponent(u.username)}/password`, { password: pass.value }), 'Password changed.')) close();
    } } })));
    pass.focus();
  }

  function toggle(u) {
    run(() => api.patch(`/api/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled }), u.disabled ? 'Account enabled.' : 'Account disabled.');
  }

  function remove(u) {
    const { body, close } = modal(`Delete ${u.username}?`);
    body.append(h('p', { text: 'The account is removed; the audit log keeps its name.' }), h('div', { class: 'row end' },
      h('button', { type: 'button', text: 'Cancel', on: { click: close } }),
      h('button', { type: 'button', class: 'danger', text: 'Delete', on: { click: async () => {
        if (await run(() => api.del(`/api/users/${encodeURIComponent(u.username)}`), 'User deleted.')) close();
      } } })));
  }

  await load();
  return null;
}
