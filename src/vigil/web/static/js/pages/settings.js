// Camera settings: draw zones, motion/privacy masks and counting lines on a snapshot.
// Coordinates are normalized (0..1 of the picture) and saved with PUT, carrying the
// version the edit started from (409 when someone else saved in between).

import * as api from '../api.js';
import { h, toast } from '../dom.js';

const KINDS = {
  zone: { label: 'Zone', color: '#4fb3a9', polygon: true, named: true },
  motion_mask: { label: 'Motion mask', color: '#d7b84a', polygon: true, named: false },
  privacy_mask: { label: 'Privacy mask', color: '#e06c6c', polygon: true, named: false },
  line: { label: 'Line', color: '#ffd166', polygon: false, named: true },
};
const HIT_PX = 10;

function shapesOf(doc) {
  const out = [];
  for (const z of doc.zones || []) out.push({ kind: 'zone', name: z.name, points: z.polygon.map((p) => [...p]), extra: { ...z } });
  for (const l of doc.lines || []) out.push({ kind: 'line', name: l.name, points: l.points.map((p) => [...p]), extra: { ...l } });
  for (const m of doc.motion_masks || []) out.push({ kind: 'motion_mask', name: '', points: m.map((p) => [...p]), extra: {} });
  for (const m of doc.privacy_masks || []) out.push({ kind: 'privacy_mask', name: '', points: m.map((p) => [...p]), extra: {} });
  return out;
}

function docOf(shapes, version) {
  const round = (p) => [Math.round(p[0] * 1e4) / 1e4, Math.round(p[1] * 1e4) / 1e4];
  const doc = { zones: [], lines: [], motion_masks: [], privacy_masks: [], version };
  for (const s of shapes) {
    const pts = s.points.map(round);
    if (s.kind === 'zone') {
      const { polygon: _p, name: _n, ...rest } = s.extra;
      doc.zones.push({ ...rest, name: s.name, polygon: pts });
    } else if (s.kind === 'line') {
      const { points: _p, name: _n, ...rest } = s.extra;
      doc.lines.push({ ...rest, name: s.name, points: pts });
    } else doc[`${s.kind}s`].push(pts);
  }
  return doc;
}

function insidePolygon(pt, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if ((yi > pt[1]) !== (yj > pt[1]) && pt[0] < ((xj - xi) * (pt[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export async function render(main, params, ctx) {
  await ctx.refreshCameras();
  const name = params.camera;
  if (!ctx.can(name, 'configure')) {
    main.append(h('div', { class: 'card' }, h('h1', { text: 'Not allowed' }),
      h('p', { text: 'You may not change the settings of this camera.' })));
    return null;
  }
  let doc = await api.get(api.cam(name, '/settings'));
  let shapes = shapesOf(doc);
  let selected = null;
  let tool = 'select';
  let draft = null; // points being drawn
  let drag = null; // {shape, index}
  let dirty = false;

  const img = h('img', { alt: `Snapshot of ${ctx.title(name)}`, id: 'settings-snapshot' });
  const canvas = h('canvas', { id: 'settings-canvas', 'aria-label': 'Drawing area: click to add points; Enter finishes a shape, Escape cancels, Delete removes the selected shape', tabindex: 0 });
  const editor = h('div', { class: 'editor' }, img, canvas);
  const list = h('div', { class: 'shape-list', id: 'shape-list' });
  const help = h('p', { class: 'muted', role: 'status' });
  const saveBtn = h('button', { type: 'button', class: 'primary', id: 'settings-save', text: 'Save' });
  const toolBtns = {};
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Drawing tools' },
    ['select', ...Object.keys(KINDS)].map((t) => {
      const b = h('button', { type: 'button', dataset: { tool: t }, text: t === 'select' ? 'Select / move' : `+ ${KINDS[t].label}` });
      b.addEventListener('click', () => setTool(t));
      toolBtns[t] = b;
      return b;
    }), h('span', { class: 'spacer' }), saveBtn);
  main.append(h('div', { class: 'row' }, h('a', { href: `#/camera/${encodeURIComponent(name)}`, text: '← Camera' }),
    h('h1', { text: `Settings — ${ctx.title(name)}` })), toolbar, help,
  h('div', { class: 'camera-page' }, editor, h('aside', { class: 'card' }, h('h2', { text: 'Zones, lines and masks' }), list)));

  img.addEventListener('load', () => draw());
  img.addEventListener('error', () => {
    img.hidden = true;
    editor.classList.add('no-snapshot');
    canvas.style.position = 'static';
    canvas.style.aspectRatio = '16 / 9';
    help.textContent = 'No snapshot available: drawing on a blank frame.';
    draw();
  });
  img.src = api.cam(name, '/snapshot');

  function setTool(t) {
    tool = t;
    draft = null;
    Object.entries(toolBtns).forEach(([k, b]) => b.setAttribute('aria-pressed', String(k === t)));
    help.textContent = t === 'select' ? 'Click a shape to select it; drag its corners to move them.'
      : t === 'line' ? 'Click the two ends of the line.'
        : 'Click the corners; click the first corner again (or press Enter) to finish.';
    canvas.focus();
    draw();
  }

  function markDirty() {
    dirty = true;
    saveBtn.textContent = 'Save *';
  }

  const size = () => [canvas.clientWidth || 1, canvas.clientHeight || 1];
  const toNorm = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height))];
  };
  const near = (a, b) => {
    const [w, hh] = size();
    return Math.hypot((a[0] - b[0]) * w, (a[1] - b[1]) * hh) <= HIT_PX;
  };

  function finishDraft() {
    if (!draft) return;
    const kind = tool;
    const need = KINDS[kind].polygon ? 3 : 2;
    if (draft.length < need) { toast(`A ${KINDS[kind].label.toLowerCase()} needs ${need} points.`, 'error'); return; }
    const count = shapes.filter((s) => s.kind === kind).length + 1;
    const shape = { kind, name: KINDS[kind].named ? `${KINDS[kind].label} ${count}` : '', points: draft, extra: {} };
    shapes.push(shape);
    selected = shape;
    draft = null;
    markDirty();
    renderList();
    setTool('select');
  }

  canvas.addEventListener('pointerdown', (ev) => {
    const p = toNorm(ev);
    if (tool !== 'select') {
      if (!draft) draft = [];
      if (KINDS[tool].polygon && draft.length >= 3 && near(p, draft[0])) { finishDraft(); return; }
      draft.push(p);
      if (!KINDS[tool].polygon && draft.length === 2) { finishDraft(); return; }
      draw();
      return;
    }
    const order = selected ? [selected, ...shapes.filter((s) => s !== selected)] : shapes;
    for (const s of order) {
      const i = s.points.findIndex((q) => near(p, q));
      if (i >= 0) {
        selected = s;
        drag = { shape: s, index: i };
        canvas.setPointerCapture(ev.pointerId);
        renderList();
        draw();
        return;
      }
    }
    selected = [...shapes].reverse().find((s) => KINDS[s.kind].polygon && insidePolygon(p, s.points)) || null;
    renderList();
    draw();
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    drag.shape.points[drag.index] = toNorm(ev);
    markDirty();
    draw();
  });
  canvas.addEventListener('pointerup', () => { drag = null; });
  canvas.addEventListener('dblclick', () => { if (tool !== 'select') finishDraft(); });
  canvas.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && draft) { finishDraft(); ev.preventDefault(); }
    else if (ev.key === 'Escape') { draft = null; setTool('select'); ev.preventDefault(); }
    else if ((ev.key === 'Delete' || ev.key === 'Backspace') && selected) { remove(selected); ev.preventDefault(); }
  });

  function remove(shape) {
    shapes = shapes.filter((s) => s !== shape);
    if (selected === shape) selected = null;
    markDirty();
    renderList();
    draw();
  }

  function renderList() {
    list.replaceChildren(...(shapes.length ? shapes.map((s) => {
      const k = KINDS[s.kind];
      const item = h('div', { class: 'shape-item', 'aria-current': String(s === selected) });
      const pick = h('button', { type: 'button', class: 'link', text: k.label, on: { click: () => { selected = s; renderList(); draw(); } } });
      item.append(h('span', { class: `swatch ${s.kind === 'zone' ? 'zone' : s.kind === 'line' ? 'line' : 'mask'}` }), pick);
      if (k.named) {
        const input = h('input', { '.value': s.name, maxlength: 64, 'aria-label': `${k.label} name`, class: 'shape-name' });
        input.addEventListener('input', () => { s.name = input.value; markDirty(); draw(); });
        item.append(input);
        const labels = h('input', { '.value': (s.extra.labels || []).join(', '), placeholder: 'all labels', 'aria-label': `${k.label} labels (comma separated)`, size: 10 });
        labels.addEventListener('input', () => {
          const v = labels.value.split(',').map((x) => x.trim()).filter(Boolean);
          s.extra.labels = v.length ? v : null;
          markDirty();
        });
        item.append(labels);
      }
      item.append(h('button', { type: 'button', class: 'icon', 'aria-label': `Delete ${k.label} ${s.name}`, text: '×', on: { click: () => remove(s) } }));
      return item;
    }) : [h('p', { class: 'muted', text: 'Nothing drawn yet. Pick a tool above.' })]));
  }

  function draw() {
    const [w, hh] = size();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hh * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hh);
    if (img.hidden) { g.fillStyle = '#222'; g.fillRect(0, 0, w, hh); }
    const X = (p) => [p[0] * w, p[1] * hh];
    const path = (pts, close) => {
      g.beginPath();
      pts.forEach((p, i) => { const [x, y] = X(p); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
      if (close) g.closePath();
    };
    for (const s of shapes) {
      const k = KINDS[s.kind];
      g.lineWidth = s === selected ? 3 : 2;
      g.strokeStyle = k.color;
      path(s.points, k.polygon);
      if (k.polygon) {
        g.fillStyle = `${k.color}${s.kind === 'privacy_mask' ? 'aa' : '40'}`;
        g.fill();
      }
      g.stroke();
      if (s === selected) {
        g.fillStyle = '#fff';
        s.points.forEach((p) => { const [x, y] = X(p); g.fillRect(x - 4, y - 4, 8, 8); });
      }
      if (k.named && s.points.length) {
        const [x, y] = X(s.points[0]);
        g.font = '13px system-ui, sans-serif';
        g.fillStyle = '#000a';
        const text = s.name; // drawn on the canvas: never interpreted as markup
        g.fillRect(x + 4, y - 16, g.measureText(text).width + 8, 18);
        g.fillStyle = '#fff';
        g.fillText(text, x + 8, y - 3);
      }
    }
    if (draft && draft.length) {
      g.strokeStyle = '#fff';
      g.setLineDash([6, 4]);
      path(draft, false);
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = '#fff';
      draft.forEach((p) => { const [x, y] = X(p); g.fillRect(x - 3, y - 3, 6, 6); });
    }
  }

  saveBtn.addEventListener('click', async () => {
    saveBtn.disabled = true;
    try {
      doc = await api.put(api.cam(name, '/settings'), docOf(shapes, doc.version));
      shapes = shapesOf(doc);
      selected = null;
      dirty = false;
      saveBtn.textContent = 'Save';
      renderList();
      draw();
      toast('Settings saved.', 'ok');
    } catch (err) {
      toast(err.code === 'version_conflict' ? 'Someone else changed these settings: reload the page and edit again.' : err.message, 'error');
    } finally {
      saveBtn.disabled = false;
    }
  });

  const onResize = () => draw();
  window.addEventListener('resize', onResize);
  const beforeUnload = (ev) => { if (dirty) ev.preventDefault(); };
  window.addEventListener('beforeunload', beforeUnload);
  renderList();
  setTool('select');
  return () => {
    window.removeEventListener('resize', onResize);
    window.removeEventListener('beforeunload', beforeUnload);
  };
}
