// Application shell: session bootstrap (setup / login / me), the hash router, the
// navigation bar and global keyboard shortcuts. Pages are modules exporting
// `render(main, params, ctx)` which returns a cleanup function (stop players, timers).

import * as api from './api.js';
import { clear, h, modal, toast } from './dom.js';
import * as auditPage from './pages/audit.js';
import * as cameraPage from './pages/camera.js';
import * as eventsPage from './pages/events.js';
import * as exportsPage from './pages/exports.js';
import * as gridPage from './pages/grid.js';
import * as loginPage from './pages/login.js';
import * as settingsPage from './pages/settings.js';
import * as systemPage from './pages/system.js';
import * as usersPage from './pages/users.js';

const ROUTES = [
  { re: /^\/?$/, page: gridPage, nav: 'grid' },
  { re: /^\/camera\/([^/]+)$/, page: cameraPage, keys: ['camera'], nav: 'grid' },
  { re: /^\/events$/, page: eventsPage, nav: 'events' },
  { re: /^\/exports$/, page: exportsPage, nav: 'exports' },
  { re: /^\/settings\/([^/]+)$/, page: settingsPage, keys: ['camera'], nav: 'grid' },
  { re: /^\/users$/, page: usersPage, nav: 'users', admin: true },
  { re: /^\/audit$/, page: auditPage, nav: 'audit', admin: true },
  { re: /^\/system$/, page: systemPage, nav: 'system' },
  { re: /^\/login$/, page: loginPage, public: true },
  { re: /^\/setup$/, page: loginPage, public: true, keys: [], setup: true },
];

const NAV = [
  { id: 'grid', href: '#/', label: 'Live' },
  { id: 'events', href: '#/events', label: 'Events' },
  { id: 'exports', href: '#/exports', label: 'Exports' },
  { id: 'system', href: '#/system', label: 'System' },
  { id: 'users', href: '#/users', label: 'Users', admin: true },
  { id: 'audit', href: '#/audit', label: 'Audit log', admin: true },
];

/** Shared state handed to pages. */
export const ctx = {
  me: null,
  cameras: [], // from GET /api/cameras
  cameraByName(name) {
    return this.cameras.find((c) => c.name === name) || null;
  },
  title(name) {
    const c = this.cameraByName(name);
    return (c && c.title) || name;
  },
  can(camera, action) {
    const c = this.cameraByName(camera);
    return !!c && (c.permissions || []).includes(action);
  },
  isAdmin() {
    return !!this.me && this.me.role === 'admin';
  },
  async refreshCameras() {
    const res = await api.get('/api/cameras');
    this.cameras = res.cameras || [];
    return this.cameras;
  },
  navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },
  async login(session) {
    api.setCsrf(session.csrf_token);
    await bootstrap();
  },
};

let cleanup = null;
let booted = false;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

function renderNav(active) {
  const nav = document.getElementById('nav');
  clear(nav);
  for (const item of NAV) {
    if (item.admin && !ctx.isAdmin()) continue;
    const a = h('a', { href: item.href, text: item.label });
    if (item.id === active) a.setAttribute('aria-current', 'page');
    nav.append(a);
  }
  document.getElementById('topbar').hidden = !ctx.me;
  document.getElementById('who-name').textContent = ctx.me ? `${ctx.me.username} (${ctx.me.role})` : '';
}

async function render() {
  const { path, query } = parseHash();
  const main = document.getElementById('view');
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
    cleanup = null;
  }
  let route = null;
  let match = null;
  for (const r of ROUTES) {
    match = path.match(r.re);
    if (match) { route = r; break; }
  }
  if (!ctx.me && (!route || !route.public)) {
    location.hash = '#/login';
    return;
  }
  if (ctx.me && route && route.public) { // already logged in: nothing to do there
    location.hash = '#/';
    return;
  }
  clear(main);
  if (!route) {
    main.append(h('div', { class: 'card' }, h('h1', { text: 'Not found' }),
      h('p', {}, 'No page here. ', h('a', { href: '#/', text: 'Back to the cameras' }))));
    return;
  }
  if (route.admin && !ctx.isAdmin()) {
    main.append(h('div', { class: 'card' }, h('h1', { text: 'Not allowed' }),
      h('p', { text: 'This page is for administrators.' })));
    return;
  }
  const params = { query, setup: !!route.setup };
  (route.keys || []).forEach((k, i) => { params[k] = decodeURIComponent(match[i + 1]); });
  renderNav(route.nav);
  try {
    cleanup = (await route.page.render(main, params, ctx)) || null;
  } catch (err) {
    console.error(err);
    clear(main);
    main.append(h('div', { class: 'card' }, h('h1', { text: 'Something went wrong' }),
      h('p', { class: 'error-text', text: err.message || String(err) })));
  }
}

async function bootstrap() {
  try {
    const setup = await api.get('/api/setup');
    if (setup.required) {
      ctx.me = null;
      renderNav(null);
      if (parseHash().path !== '/setup') { location.hash = '#/setup'; return; }
      await render();
      return;
    }
  } catch (_) { /* older server or network: carry on to login */ }
  try {
    ctx.me = await api.get('/api/auth/me');
    api.setCsrf(ctx.me.csrf_token);
    await ctx.refreshCameras();
  } catch (err) {
    ctx.me = null;
    if (!(err instanceof api.ApiError) || err.status !== 401) toast(err.message, 'error');
    renderNav(null);
    const { path } = parseHash();
    if (path !== '/login') { location.hash = '#/login'; return; }
    await render();
    return;
  }
  const { path } = parseHash();
  if (path === '/login' || path === '/setup') { location.hash = '#/'; return; }
  await render();
}

function showHelp() {
  const { body } = modal('Keyboard shortcuts');
  const rows = [
    ['?', 'This help'],
    ['g then l', 'Live grid'], ['g then e', 'Events'], ['g then s', 'System'],
    ['Space or k', 'Play / pause (camera page)'],
    [', and .', 'Previous / next frame (paused)'],
    ['j and l', 'Back / forward 10 seconds'],
    ['Shift+j / Shift+l', 'Back / forward 1 minute'],
    ['Esc', 'Back to live (camera page)'],
    ['x', 'Export dialog (camera page)'],
    ['m', 'Sound on / off (camera page)'],
    ['← → Home End', 'Move on the focused timeline; + and − zoom; Enter plays'],
  ];
  body.append(h('table', {}, h('tbody', {}, rows.map(([k, d]) =>
    h('tr', {}, h('td', {}, h('span', { class: 'kbd', text: k })), h('td', { text: d }))))));
}

let pendingG = false;
function onKey(ev) {
  const t = ev.target;
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  if (document.querySelector('dialog[open]')) return;
  if (ev.key === '?') { showHelp(); ev.preventDefault(); return; }
  if (!ctx.me) return;
  if (pendingG) {
    pendingG = false;
    const dest = { l: '#/', e: '#/events', s: '#/system', x: '#/exports' }[ev.key];
    if (dest) { location.hash = dest; ev.preventDefault(); }
    return;
  }
  if (ev.key === 'g') {
    pendingG = true;
    setTimeout(() => { pendingG = false; }, 1500);
  }
}

async function logout() {
  try { await api.post('/api/auth/logout'); } catch (_) { /* gone anyway */ }
  ctx.me = null;
  api.setCsrf(null);
  location.hash = '#/login';
  renderNav(null);
}

function start() {
  if (booted) return;
  booted = true;
  api.setUnauthorizedHandler(() => {
    if (!ctx.me) return;
    ctx.me = null;
    toast('Your session has ended; please log in again.', 'error');
    location.hash = '#/login';
    renderNav(null);
  });
  window.addEventListener('hashchange', () => {
    if (ctx.me || ['/login', '/setup'].includes(parseHash().path)) render();
    else bootstrap();
  });
  document.addEventListener('keydown', onKey);
  document.getElementById('logout').addEventListener('click', logout);
  bootstrap();
}

start();
