// Events: search by camera, label, zone, time; snapshots; clicking one opens its clip.

import * as api from '../api.js';
import { field, fmtWall, fromLocalInput, h, modal } from '../dom.js';
import { openExportDialog } from '../export-dialog.js';

const PAGE = 48;

export function openEventClip(ctx, ev) {
  const { body } = modal(`${ev.label} — ${ctx.title(ev.camera)}`);
  const video = h('video', {
    class: 'clip-video', id: 'event-clip', controls: true, autoplay: true, muted: true, '.muted': true,
    playsinline: true, src: ev.clip_url, 'aria-label': `Clip of the ${ev.label} event`,
  });
  const meta = h('p', { class: 'muted' },
    `${fmtWall(ev.start_us)} → ${ev.end_us ? fmtWall(ev.end_us, { date: false }) : 'ongoing'}`,
    ev.zones && ev.zones.length ? ` · zones: ${ev.zones.join(', ')}` : '',
    ` · score ${Math.round((ev.max_score || 0) * 100)}%`);
  const actions = h('div', { class: 'row' },
    h('a', { class: 'button', href: `#/camera/${encodeURIComponent(ev.camera)}?t=${Math.round(ev.start_us - 2e6)}`, text: 'Open in timeline' }),
    ctx.can(ev.camera, 'export') ? h('button', {
      type: 'button', text: 'Export…',
      on: { click: () => openExportDialog(ctx, { camera: ev.camera, start_us: ev.start_us - 10e6, end_us: (ev.end_us || Date.now() * 1000) + 10e6 }) },
    }) : null);
  video.addEventListener('error', () => meta.append(h('span', { class: 'error-text', text: ' · the clip could not be played' })));
  body.append(video, meta, actions);
}

function eventCard(ctx, ev) {
  const card = h('button', {
    type: 'button', class: 'event', dataset: { event: ev.id, camera: ev.camera },
    'aria-label': `${ev.label} on ${ctx.title(ev.camera)} at ${fmtWall(ev.start_us)}: open clip`,
  },
  ev.snapshot_url ? h('img', { src: ev.snapshot_url, alt: `Snapshot: ${ev.label}`, loading: 'lazy' }) : h('div', { class: 'live' }, h('span', { class: 'live-badge', text: 'No snapshot' })),
  h('div', { class: 'event-meta' },
    h('strong', { class: 'event-label', text: ev.label }),
    h('span', { class: 'event-camera', text: ctx.title(ev.camera) }),
    h('small', { class: 'muted', text: fmtWall(ev.start_us) }),
    ev.zones && ev.zones.length ? h('small', { class: 'muted', text: `Zones: ${ev.zones.join(', ')}` }) : null,
    ev.end_us ? null : h('span', { class: 'pill warn', text: 'ongoing' })));
  card.addEventListener('click', () => openEventClip(ctx, ev));
  return card;
}

export async function render(main, params, ctx) {
  await ctx.refreshCameras();
  const cams = ctx.cameras.filter((c) => (c.permissions || []).includes('view_recordings'));
  const camSel = h('select', { name: 'camera' }, h('option', { value: '', text: 'All cameras' }),
    cams.map((c) => h('option', { value: c.name, text: c.title || c.name })));
  if (params.query.get('camera')) camSel.value = params.query.get('camera');
  const label = h('input', { name: 'label', placeholder: 'e.g. person', maxlength: 64 });
  const zone = h('input', { name: 'zone', placeholder: 'zone name', maxlength: 64 });
  const from = h('input', { type: 'datetime-local', step: 1, name: 'from' });
  const to = h('input', { type: 'datetime-local', step: 1, name: 'to' });
  const ongoing = h('select', { name: 'ongoing' },
    h('option', { value: '', text: 'Any' }), h('option', { value: 'true', text: 'Ongoing' }), h('option', { value: 'false', text: 'Ended' }));
  const form = h('form', { class: 'card toolbar', role: 'search' },
    field('Camera', camSel), field('Label', label), field('Zone', zone), field('From', from), field('To', to),
    field('State', ongoing), h('button', { type: 'submit', class: 'primary', text: 'Search' }));
  const list = h('div', { class: 'events', id: 'events' });
  const status = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', text: 'Load more', hidden: true });
  main.append(h('h1', { text: 'Events' }), form, status, list, h('div', { class: 'row' }, more));

  let cursor = null;
  async function load(reset) {
    if (reset) { cursor = null; list.replaceChildren(); }
    status.textContent = 'Loading…';
    const q = {
      camera: camSel.value || undefined,
      label: label.value.trim() || undefined,
      zone: zone.value.trim() || undefined,
      start: from.value ? fromLocalInput(from.value) : undefined,
      end: to.value ? fromLocalInput(to.value) : undefined,
      ongoing: ongoing.value || undefined,
      limit: PAGE,
      cursor: cursor || undefined,
    };
    try {
      const res = await api.get(api.url('/api/events', q));
      res.events.forEach((ev) => list.append(eventCard(ctx, ev)));
      cursor = res.next_cursor;
      more.hidden = !cursor;
      status.textContent = list.childElementCount ? '' : 'No events match.';
    } catch (err) {
      status.textContent = err.message;
    }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  await load(true);
  return null;
}
