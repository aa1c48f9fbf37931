// The audit log (administrators): search, CSV download, chain verification.

import * as api from '../api.js';
import { field, fmtWall, fromLocalInput, h } from '../dom.js';

export async function render(main, _params, ctx) {
  await ctx.refreshCameras();
  const actor = h('input', { maxlength: 64, placeholder: 'user name' });
  const action = h('input', { maxlength: 64, placeholder: 'e.g. live.view or export.*' });
  const camera = h('select', {}, h('option', { value: '', text: 'Any camera' }), ctx.cameras.map((c) => h('option', { value: c.name, text: c.title || c.name })));
  const outcome = h('select', {}, ['', 'ok', 'failed', 'denied'].map((o) => h('option', { value: o, text: o || 'Any outcome' })));
  const from = h('input', { type: 'datetime-local', step: 1 });
  const to = h('input', { type: 'datetime-local', step: 1 });
  const csv = h('a', { class: 'button', id: 'audit-csv', href: '/api/audit/export.csv', download: '', text: 'Download CSV' });
  const verifyBtn = h('button', { type: 'button', text: 'Verify chain' });
  const verifyOut = h('span', { role: 'status' });
  const form = h('form', { class: 'card toolbar', role: 'search' },
    field('Actor', actor), field('Action', action), field('Camera', camera), field('Outcome', outcome),
    field('From', from), field('To', to), h('button', { type: 'submit', class: 'primary', text: 'Search' }));
  const tbody = h('tbody');
  const more = h('button', { type: 'button', text: 'Older records', hidden: true });
  main.append(h('div', { class: 'toolbar' }, h('h1', { text: 'Audit log' }), h('span', { class: 'spacer' }), verifyOut, verifyBtn, csv),
    form, h('div', { class: 'card table-wrap' }, h('table', { id: 'audit' },
      h('thead', {}, h('tr', {}, ['#', 'Time', 'Actor', 'Action', 'Outcome', 'Camera', 'Target', 'Address', 'Detail'].map((t) => h('th', { text: t })))), tbody)),
    h('div', { class: 'row' }, more));

  const filters = () => ({
    actor: actor.value.trim() || undefined,
    action: action.value.trim() || undefined,
    camera: camera.value || undefined,
    outcome: outcome.value || undefined,
    start: from.value ? fromLocalInput(from.value) : undefined,
    end: to.value ? fromLocalInput(to.value) : undefined,
  });
  let cursor = null;
  async function load(reset) {
    if (reset) { cursor = null; tbody.replaceChildren(); }
    csv.href = api.url('/api/audit/export.csv', filters());
    const res = await api.get(api.url('/api/audit', { ...filters(), limit: 100, cursor: cursor || undefined }));
    for (const r of res.records) {
      tbody.append(h('tr', {},
        h('td', { class: 'mono', text: r.seq }), h('td', { class: 'nowrap', text: fmtWall(r.at_us) }),
        h('td', { text: `${r.actor} (${r.actor_kind})` }), h('td', { class: 'mono', text: r.action }),
        h('td', {}, h('span', { class: `pill ${r.outcome === 'ok' ? 'ok' : r.outcome === 'denied' ? 'bad' : 'warn'}`, text: r.outcome })),
        h('td', { text: r.camera || '' }), h('td', { class: 'mono', text: r.target }), h('td', { class: 'mono', text: r.ip }),
        h('td', { class: 'mono', text: r.detail && Object.keys(r.detail).length ? JSON.stringify(r.detail) : '' })));
    }
    cursor = res.next_cursor;
    more.hidden = !cursor;
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  verifyBtn.addEventListener('click', async () => {
    verifyOut.textContent = 'Verifying…';
    try {
      const rep = await api.get('/api/audit/verify');
      verifyOut.replaceChildren(h('span', { class: `pill ${rep.ok ? 'ok' : 'bad'}`, text: rep.ok ? `Chain intact (${rep.records ?? rep.checked ?? ''} records)` : 'Chain broken' }));
      if (!rep.ok) verifyOut.append(' ', h('span', { class: 'error-text', text: (rep.problems || []).map((p) => p.message).join('; ') }));
    } catch (err) { verifyOut.textContent = err.message; }
  });
  await load(true);
  return null;
}
