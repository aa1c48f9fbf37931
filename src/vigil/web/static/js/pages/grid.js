// The live grid: every camera the user may watch, substream, auto-reconnecting.

import { fmtWall, h } from '../dom.js';
import { LivePlayer } from '../live.js';

function stateClass(state) {
  return { online: 'ok', connecting: 'warn', stalled: 'warn', offline: 'bad', stopped: 'bad', disabled: '' }[state] ?? '';
}

export async function render(main, _params, ctx) {
  await ctx.refreshCameras();
  const players = [];
  const cams = ctx.cameras;
  main.append(h('h1', { class: 'hidden', text: 'Live cameras' }));
  if (!cams.length) {
    main.append(h('div', { class: 'card' }, h('h2', { text: 'No cameras' }),
      h('p', { class: 'muted', text: ctx.isAdmin()
        ? 'No camera is configured yet: add cameras to the configuration file and restart Vigil.'
        : 'No camera has been shared with you yet. Ask an administrator to grant you access.' })));
    return null;
  }
  const grid = h('div', { class: 'grid', id: 'grid' });
  const pills = new Map();
  for (const c of cams) {
    const health = c.health || {};
    const title = h('span', { class: 'tile-title', text: c.title || c.name, title: c.title || c.name });
    const state = h('span', { class: `pill ${stateClass(health.state)}`, text: health.state || 'unknown' });
    pills.set(c.name, state);
    const clock = h('span', { class: 'tile-clock', text: '' });
    const tile = h('a', {
      class: 'tile', href: `#/camera/${encodeURIComponent(c.name)}`,
      dataset: { camera: c.name }, 'aria-label': `Open camera ${c.title || c.name}`,
    }, h('div', { class: 'tile-head' }, title, state, clock));
    if ((c.permissions || []).includes('view_live') && c.enabled !== false) {
      const player = new LivePlayer(c.name, { stream: 'sub' });
      players.push({ player, clock });
      tile.append(player.el);
      player.start();
    } else {
      tile.append(h('div', { class: 'live' }, h('span', { class: 'live-badge', text: c.enabled === false ? 'Disabled' : 'Recordings only' })));
    }
    grid.append(tile);
  }
  main.append(grid);
  const timer = setInterval(() => {
    for (const { player, clock } of players) {
      const wall = player.wallNow();
      clock.textContent = wall ? fmtWall(wall, { date: false }) : '';
      clock.dataset.wallUs = wall ? String(Math.round(wall)) : '';
    }
  }, 250);
  // camera health (online, offline...) changes: refresh the pills now and then
  const health = setInterval(async () => {
    try {
      for (const c of await ctx.refreshCameras()) {
        const pill = pills.get(c.name);
        const st = (c.health && c.health.state) || 'unknown';
        if (pill) { pill.textContent = st; pill.className = `pill ${stateClass(st)}`; }
      }
    } catch (_) { /* next time */ }
  }, 5000);
  return () => {
    clearInterval(health);
    clearInterval(timer);
    players.forEach(({ player }) => player.stop());
  };
}
