// System health: recorder and storage, per-camera fps, bitrate, uptime and disk use.

import * as api from '../api.js';
import { fmtBitrate, fmtBytes, fmtDuration, fmtWall, h } from '../dom.js';

function stat(label, value, extra) {
  return h('div', { class: 'card stat' }, h('div', { class: 'muted', text: label }), h('div', { class: 'value', text: value }), extra || null);
}

export async function render(main, _params, ctx) {
  await ctx.refreshCameras();
  const summary = h('div', { class: 'stats', id: 'system-summary' });
  const tbody = h('tbody');
  const updated = h('p', { class: 'muted', role: 'status' });
  main.append(h('h1', { text: 'System' }), summary,
    h('div', { class: 'card table-wrap' }, h('table', { id: 'system-cameras' },
      h('thead', {}, h('tr', {}, ['Camera', 'State', 'Recording', 'FPS', 'Bitrate', 'Uptime', 'Reconnects', 'Last packet', 'Footage'].map((t) => h('th', { text: t })))),
      tbody)), updated);

  async function load() {
    let s;
    try { s = await api.get('/api/system'); } catch (err) { updated.textContent = err.message; return; }
    const st = s.storage || {};
    const usedPct = st.total_bytes ? Math.round((st.used_bytes / st.total_bytes) * 100) : null;
    const bar = h('div', { class: 'bar', 'aria-hidden': 'true' }, h('span'));
    if (usedPct !== null) bar.firstChild.style.width = `${usedPct}%`;
    summary.replaceChildren(
      stat('Version', s.version || '—'),
      stat('Recorder', s.recorder && s.recorder.running ? 'running' : 'not running', s.recorder && s.recorder.node ? h('small', { class: 'muted', text: s.recorder.node }) : null),
      stat('API uptime', fmtDuration((s.api_uptime_s || 0) * 1e6)),
      stat('Disk', usedPct === null ? '—' : `${usedPct}% used`, h('div', {}, bar, h('small', { class: 'muted', text: `${fmtBytes(st.free_bytes)} free of ${fmtBytes(st.total_bytes)}` }))),
      stat('Footage', fmtBytes(st.footage_bytes), st.path ? h('small', { class: 'muted mono', text: st.path }) : null),
    );
    tbody.replaceChildren(...(s.cameras || []).map((c) => {
      const cls = { online: 'ok', offline: 'bad', stalled: 'warn', connecting: 'warn' }[c.state] || '';
      return h('tr', { dataset: { camera: c.name } },
        h('td', {}, h('a', { href: `#/camera/${encodeURIComponent(c.name)}`, text: ctx.title(c.name) })),
        h('td', {}, h('span', { class: `pill ${cls}`, text: c.state })),
        h('td', { text: c.recording }),
        h('td', { class: 'mono', text: (c.fps || 0).toFixed(1) }),
        h('td', { class: 'mono', text: fmtBitrate(c.bitrate_bps) }),
        h('td', { text: c.uptime_s ? fmtDuration(c.uptime_s * 1e6) : '—' }),
        h('td', { class: 'mono', text: c.reconnects ?? 0 }),
        h('td', { text: c.last_packet_us ? fmtWall(c.last_packet_us) : '—' }),
        h('td', { text: `${fmtBytes(c.bytes)} (${c.segments} files)` }));
    }));
    updated.textContent = `Updated ${fmtWall(s.time_us || Date.now() * 1000)}`;
  }
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
