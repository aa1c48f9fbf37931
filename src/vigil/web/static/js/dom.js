// DOM helpers. Every piece of text reaches the page through text nodes or textContent:
// camera titles, zone names and labels are untrusted, and the page's CSP forbids
// innerHTML-style sinks altogether (Trusted Types with no policy).

/**
 * Create an element. `attrs` keys: `class`, `text`, `dataset` (object), `on` (object of
 * event handlers), boolean/string attributes, and properties prefixed with `.`
 * (e.g. {'.value': 'x'}). Children may be nodes, strings (become text), arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key.startsWith('.')) el[key.slice(1)] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings, arrays, null) to `el`. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Local wall-clock time of µs since the epoch, e.g. 2025-01-31 14:03:07.250. */
export function fmtWall(us, { ms = false, date = true } = {}) {
  if (us === null || us === undefined || Number.isNaN(us)) return '—';
  const d = new Date(Math.floor(us / 1000));
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  let t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (ms) t += `.${pad(d.getMilliseconds(), 3)}`;
  return date ? `${day} ${t}` : t;
}

export function fmtDuration(us) {
  let s = Math.max(0, Math.round(us / 1e6));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${pad(mm)}m`;
  if (mm) return `${mm}m ${pad(s)}s`;
  return `${s}s`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return `${v.toFixed(v < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function fmtBitrate(bps) {
  if (!bps) return '—';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

/** `datetime-local` input value (local time, seconds) for µs, and back. */
export function toLocalInput(us) {
  const d = new Date(Math.floor(us / 1000));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fromLocalInput(value) {
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? null : t * 1000;
}

export function nowUs() {
  return Date.now() * 1000;
}

let toastRoot = null;

/** A short message in the corner; `kind` is info, ok or error. */
export function toast(message, kind = 'info', ms = 5000) {
  toastRoot ||= document.getElementById('toasts');
  if (!toastRoot) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  toastRoot.append(el);
  setTimeout(() => el.remove(), ms);
}

/** A modal dialog (native <dialog>): returns {dialog, body, close}. */
export function modal(title, { onClose } = {}) {
  const body = h('div', { class: 'dialog-body' });
  const closeBtn = h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', text: '×' });
  const dialog = h('dialog', { class: 'dialog', 'aria-label': title },
    h('div', { class: 'dialog-head' }, h('h2', { text: title }), closeBtn), body);
  const close = () => { if (dialog.open) dialog.close(); };
  closeBtn.addEventListener('click', close);
  dialog.addEventListener('close', () => { dialog.remove(); if (onClose) onClose(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, close };
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id, text: label }), input,
    hint ? h('small', { class: 'muted', text: hint }) : null);
}

/** Debounce: run `fn` once calls have stopped for `ms`. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** Download a Blob under a file name (object URL, revoked after use). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, class: 'hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
