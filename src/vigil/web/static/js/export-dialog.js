// The export dialog: a range, a reason (required: exports are evidence) and a case id;
// then the job's progress, and the signed package to download and verify.

import * as api from './api.js';
import { field, fmtDuration, fromLocalInput, h, modal, toLocalInput, toast } from './dom.js';

const POLL_MS = 800;

export function exportLinks(id) {
  const enc = encodeURIComponent(id);
  return {
    download: `/api/exports/${enc}/download`,
    verify: `/api/exports/${enc}/verify`,
    status: `/api/exports/${enc}`,
  };
}

/** Render the result of POST /api/exports/{id}/verify into `el`. */
export function showVerification(el, rep) {
  el.replaceChildren(
    h('p', {}, h('span', { class: `pill ${rep.ok ? 'ok' : 'bad'}`, text: rep.ok ? 'Verified' : 'Verification failed' }),
      ' ', h('span', { class: 'muted', text: `${rep.checked ?? 0} files checked` })),
    rep.fingerprint ? h('p', { class: 'mono muted', text: `Signing key ${rep.fingerprint}` }) : null,
    (rep.problems || []).length
      ? h('ul', {}, rep.problems.map((p) => h('li', { class: 'error-text', text: `${p.path || ''} ${p.message}` })))
      : null,
  );
}

export function openExportDialog(ctx, { camera, start_us: startUs, end_us: endUs }) {
  let timer = null;
  const { body, close } = modal(`Export — ${ctx.title(camera)}`, { onClose: () => clearTimeout(timer) });
  const start = h('input', { type: 'datetime-local', step: 1, required: true, '.value': toLocalInput(startUs) });
  const end = h('input', { type: 'datetime-local', step: 1, required: true, '.value': toLocalInput(endUs) });
  const reason = h('textarea', { required: true, maxlength: 2000, placeholder: 'Why is this footage exported?' });
  const caseId = h('input', { maxlength: 128, placeholder: 'optional' });
  const length = h('p', { class: 'muted' });
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary', text: 'Export' });
  const updateLength = () => {
    const a = fromLocalInput(start.value);
    const b = fromLocalInput(end.value);
    length.textContent = a && b && b > a ? `Length: ${fmtDuration(b - a)}` : 'The end must be after the start.';
  };
  start.addEventListener('input', updateLength);
  end.addEventListener('input', updateLength);
  updateLength();
  const form = h('form', { class: 'export-form' },
    h('div', { class: 'row' }, field('From', start), field('To', end)), length,
    field('Reason', reason, 'Recorded in the export manifest and the audit log.'),
    field('Case or incident id', caseId), error,
    h('div', { class: 'row end' }, h('button', { type: 'button', text: 'Cancel', on: { click: close } }), submit));
  body.append(form);
  reason.focus();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const a = fromLocalInput(start.value);
    const b = fromLocalInput(end.value);
    if (!a || !b || b <= a) { error.textContent = 'The end must be after the start.'; return; }
    if (!reason.value.trim()) { error.textContent = 'Say why this footage is exported.'; return; }
    submit.disabled = true;
    let job;
    try {
      job = await api.post('/api/exports', {
        camera, start: String(a), end: String(b), reason: reason.value.trim(), case_id: caseId.value.trim(),
      });
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = false;
      return;
    }
    const bar = h('progress', { max: 1, '.value': 0, 'aria-label': 'Export progress' });
    const stage = h('p', { class: 'muted', text: 'Queued…' });
    const result = h('div', { class: 'export-result' });
    body.replaceChildren(h('p', { text: `Exporting ${fmtDuration(b - a)} of ${ctx.title(camera)}.` }), bar, stage, result);
    const links = exportLinks(job.id);
    const poll = async () => {
      let st;
      try {
        st = await api.get(links.status);
      } catch (err) {
        stage.textContent = err.message;
        timer = setTimeout(poll, POLL_MS * 3);
        return;
      }
      bar.value = st.progress ?? 0;
      stage.textContent = st.stage && st.stage !== st.state ? `${st.state} — ${st.stage}` : st.state;
      if (st.state === 'failed') {
        stage.className = 'error-text';
        stage.textContent = `Export failed: ${st.error || 'unknown error'}`;
        return;
      }
      if (st.state !== 'done') { timer = setTimeout(poll, POLL_MS); return; }
      const verifyOut = h('div');
      const verifyBtn = h('button', { type: 'button', text: 'Verify package' });
      verifyBtn.addEventListener('click', async () => {
        verifyBtn.disabled = true;
        try { showVerification(verifyOut, await api.post(links.verify)); } catch (err) { toast(err.message, 'error'); }
        verifyBtn.disabled = false;
      });
      result.replaceChildren(
        h('p', { class: 'pill ok', text: 'Done' }),
        h('div', { class: 'row' },
          h('a', { class: 'button primary', href: links.download, download: '', id: 'export-download', text: 'Download package (.zip)' }),
          verifyBtn),
        verifyOut,
        (st.files || []).length ? h('details', {}, h('summary', { text: 'Files' }),
          h('ul', {}, st.files.map((f) => h('li', { class: 'mono', text: `${f.name} (${f.bytes} bytes)` })))) : null,
      );
    };
    poll();
  });
  return { close };
}
