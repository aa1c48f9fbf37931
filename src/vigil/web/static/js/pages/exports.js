// Evidence exports: running jobs and finished packages, download and verify, new export.

import * as api from '../api.js';
import { field, fmtDuration, fmtWall, h, modal, nowUs, toast } from '../dom.js';
import { exportLinks, openExportDialog, showVerification } from '../export-dialog.js';

export async function render(main, _params, ctx) {
  await ctx.refreshCameras();
  const exportable = ctx.cameras.filter((c) => (c.permissions || []).includes('export'));
  const newBtn = h('button', { type: 'button', class: 'primary', text: 'New export…', disabled: !exportable.length });
  const tbody = h('tbody');
  const status = h('p', { class: 'muted', role: 'status' });
  main.append(h('div', { class: 'toolbar' }, h('h1', { text: 'Exports' }), h('span', { class: 'spacer' }), newBtn),
    status,
    h('div', { class: 'card table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Camera', 'Footage', 'Reason', 'Case', 'By', 'State', ''].map((t) => h('th', { text: t })))),
      tbody)));

  newBtn.addEventListener('click', () => {
    const { body, close } = modal('New export');
    const sel = h('select', {}, exportable.map((c) => h('option', { value: c.name, text: c.title || c.name })));
    body.append(field('Camera', sel), h('div', { class: 'row end' },
      h('button', { type: 'button', class: 'primary', text: 'Continue', on: { click: () => {
        close();
        pending = true;
        openExportDialog(ctx, { camera: sel.value, start_us: nowUs() - 15 * 60e6, end_us: nowUs() - 5 * 60e6 });
      } } })));
  });

  let pending = false; // refresh only while a job runs (a refresh redraws the rows)
  async function load() {
    let res;
    try {
      res = await api.get('/api/exports');
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    const rows = [...res.jobs, ...res.exports];
    pending = rows.some((x) => x.state !== 'done' && x.state !== 'failed');
    status.textContent = rows.length ? '' : 'No exports yet.';
    tbody.replaceChildren(...rows.map((x) => {
      const done = x.state === 'done';
      const links = exportLinks(x.id);
      const verifyOut = h('div');
      const actions = h('td', {});
      if (done) {
        actions.append(h('a', { class: 'button', href: links.download, download: '', text: 'Download' }), ' ',
          h('button', { type: 'button', text: 'Verify', on: { click: async (ev) => {
            ev.target.disabled = true;
            try { showVerification(verifyOut, await api.post(links.verify)); } catch (err) { toast(err.message, 'error'); }
            ev.target.disabled = false;
          } } }), verifyOut);
      }
      const stateCell = done ? h('span', { class: 'pill ok', text: 'done' })
        : x.state === 'failed' ? h('span', { class: 'pill bad', text: 'failed', title: x.error || '' })
          : h('span', {}, h('progress', { max: 1, '.value': x.progress || 0 }), h('small', { class: 'muted', text: ` ${x.stage || x.state}` }));
      return h('tr', { dataset: { export: x.id } },
        h('td', { text: ctx.title(x.camera) }),
        h('td', {}, fmtWall(x.start_us), h('br'), h('small', { class: 'muted', text: fmtDuration(x.end_us - x.start_us) })),
        h('td', { text: x.reason }), h('td', { text: x.case_id || '—' }), h('td', { text: x.requested_by || '—' }),
        h('td', {}, stateCell), actions);
    }));
  }
  await load();
  const timer = setInterval(() => { if (pending) load(); }, 2000);
  return () => clearInterval(timer);
}
