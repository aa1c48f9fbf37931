// The timeline bar: what was recorded when (spans), the holes and why (gaps), motion
// activity and events, drawn on a canvas for a window of wall-clock time. Click or drag
// to pick an instant (onSeek), wheel or +/- to zoom, arrow keys to move.

import { fmtDuration, fmtWall, h } from './dom.js';

const MIN_WINDOW_US = 60e6; // one minute
const MAX_WINDOW_US = 31 * 86400e6;

const COLORS = {
  bg: '#1b2733',
  span: '#2f8f6b',
  gap: '#6b2d2d',
  gapUnknown: '#4a4a4a',
  activity: '#d7b84a',
  event: '#ff8c42',
  cursor: '#ffffff',
  hover: 'rgba(255,255,255,0.5)',
  now: '#4fb3a9',
  tick: '#8da2b5',
};

function niceStep(us) {
  const steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400]
    .map((s) => s * 1e6);
  return steps.find((s) => s >= us) || 86400e6 * 7;
}

export class Timeline {
  /**
   * `onSeek(us)` when the user picks an instant; `onWindow(start, end)` when the visible
   * window changes (so the page can load data for it).
   */
  constructor({ onSeek = () => {}, onWindow = () => {} } = {}) {
    this.onSeek = onSeek;
    this.onWindow = onWindow;
    this.start = 0;
    this.end = 1;
    this.data = { spans: [], gaps: [], events: [], activity: [] };
    this.cursor = null; // playhead (µs)
    this.hover = null;
    this.dragging = false;
    this.canvas = h('canvas', { class: 'timeline-canvas', height: 56 });
    this.label = h('div', { class: 'timeline-label', 'aria-hidden': 'true' });
    this.el = h('div', {
      class: 'timeline', tabindex: 0, role: 'slider',
      'aria-label': 'Recording timeline: arrow keys move, Enter plays, + and - zoom',
      'aria-valuemin': 0, 'aria-valuemax': 100,
    }, this.canvas, this.label);
    this.bind();
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.el);
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  setWindow(start, end, notify = true) {
    const span = Math.min(MAX_WINDOW_US, Math.max(MIN_WINDOW_US, end - start));
    const mid = (start + end) / 2;
    this.start = Math.round(mid - span / 2);
    this.end = Math.round(mid + span / 2);
    this.draw();
    if (notify) this.onWindow(this.start, this.end);
  }

  setData(data) {
    this.data = {
      spans: data.spans || [],
      gaps: data.gaps || [],
      events: data.events || [],
      activity: data.activity || [],
    };
    this.el.dataset.loaded = 'true';
    this.draw();
  }

  setCursor(us) {
    this.cursor = us;
    if (us !== null && us !== undefined) {
      const pct = ((us - this.start) / (this.end - this.start)) * 100;
      this.el.setAttribute('aria-valuenow', String(Math.max(0, Math.min(100, Math.round(pct)))));
      this.el.setAttribute('aria-valuetext', fmtWall(us));
    }
    this.draw();
  }

  xOf(us) {
    const w = this.canvas.clientWidth || 1;
    return ((us - this.start) / (this.end - this.start)) * w;
  }

  usOf(x) {
    const w = this.canvas.clientWidth || 1;
    return Math.round(this.start + (x / w) * (this.end - this.start));
  }

  /** Whether footage exists at `us` (per the loaded spans). */
  recordedAt(us) {
    return this.data.spans.some((s) => s.start_us <= us && us < s.end_us);
  }

  gapAt(us) {
    return this.data.gaps.find((g) => g.start_us <= us && us < g.end_us) || null;
  }

  bind() {
    const c = this.canvas;
    const pos = (ev) => {
      const r = c.getBoundingClientRect();
      return Math.max(0, Math.min(r.width, ev.clientX - r.left));
    };
    c.addEventListener('pointerdown', (ev) => {
      this.dragging = true;
      c.setPointerCapture(ev.pointerId);
      this.hover = this.usOf(pos(ev));
      this.draw();
    });
    c.addEventListener('pointermove', (ev) => {
      this.hover = this.usOf(pos(ev));
      this.draw();
    });
    c.addEventListener('pointerup', (ev) => {
      if (!this.dragging) return;
      this.dragging = false;
      const us = this.usOf(pos(ev));
      this.hover = null;
      this.onSeek(us);
    });
    c.addEventListener('pointerleave', () => {
      if (!this.dragging) { this.hover = null; this.draw(); }
    });
    c.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const at = this.usOf(pos(ev));
      this.zoom(ev.deltaY > 0 ? 1.5 : 1 / 1.5, at);
    }, { passive: false });
    this.el.addEventListener('keydown', (ev) => this.onKey(ev));
  }

  zoom(factor, at = null) {
    const centre = at ?? (this.cursor ?? (this.start + this.end) / 2);
    const span = Math.min(MAX_WINDOW_US, Math.max(MIN_WINDOW_US, (this.end - this.start) * factor));
    const frac = (centre - this.start) / (this.end - this.start);
    const start = centre - span * frac;
    this.setWindow(start, start + span);
  }

  pan(fraction) {
    const d = (this.end - this.start) * fraction;
    this.setWindow(this.start + d, this.end + d);
  }

  onKey(ev) {
    const span = this.end - this.start;
    const step = ev.shiftKey ? span / 10 : span / 100;
    let cur = this.cursor ?? this.end;
    switch (ev.key) {
      case 'ArrowLeft': cur -= step; break;
      case 'ArrowRight': cur += step; break;
      case 'Home': cur = this.start; break;
      case 'End': cur = this.end; break;
      case '+': case '=': this.zoom(1 / 2); ev.preventDefault(); return;
      case '-': case '_': this.zoom(2); ev.preventDefault(); return;
      case 'Enter': if (this.cursor !== null) this.onSeek(this.cursor); ev.preventDefault(); return;
      default: return;
    }
    ev.preventDefault();
    if (cur < this.start || cur > this.end) this.setWindow(cur - span / 2, cur + span / 2);
    this.setCursor(Math.round(cur));
    this.seekSoon();
  }

  seekSoon() {
    clearTimeout(this.keyTimer);
    this.keyTimer = setTimeout(() => { if (this.cursor !== null) this.onSeek(this.cursor); }, 400);
  }

  draw() {
    const c = this.canvas;
    const w = c.clientWidth;
    const hgt = c.clientHeight || 56;
    if (!w) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = COLORS.bg;
    g.fillRect(0, 0, w, hgt);
    const barTop = 18;
    const barH = hgt - barTop - 4;
    const px = (a, b) => [Math.max(0, this.xOf(a)), Math.min(w, this.xOf(b))];

    for (const gap of this.data.gaps) {
      const [x0, x1] = px(gap.start_us, gap.end_us);
      if (x1 <= x0) continue;
      g.fillStyle = gap.reason === 'unknown' ? COLORS.gapUnknown : COLORS.gap;
      g.fillRect(x0, barTop, Math.max(1, x1 - x0), barH);
    }
    for (const s of this.data.spans) {
      const [x0, x1] = px(s.start_us, s.end_us);
      if (x1 <= x0) continue;
      g.fillStyle = COLORS.span;
      g.fillRect(x0, barTop, Math.max(1, x1 - x0), barH);
    }
    // motion activity: bar height by score (0..1) over its bucket
    g.fillStyle = COLORS.activity;
    for (const a of this.data.activity) {
      const [x0, x1] = px(a.start_us, a.end_us);
      if (x1 <= x0) continue;
      const level = Math.max(0.1, Math.min(1, a.level ?? 1));
      const bh = Math.max(2, (barH / 2) * level);
      g.fillRect(x0, barTop + barH - bh, Math.max(1, x1 - x0), bh);
    }
    g.fillStyle = COLORS.event;
    for (const e of this.data.events) {
      const [x0, x1] = px(e.start_us, Math.max(e.end_us || e.start_us, e.start_us));
      if (x1 < 0 || x0 > w) continue;
      g.fillRect(x0, barTop - 6, Math.max(3, x1 - x0), 5);
    }
    // time ticks
    // the visible window, for automation and assistive tools
    this.el.dataset.startUs = String(this.start);
    this.el.dataset.endUs = String(this.end);
    const span = this.end - this.start;
    const step = niceStep(span / Math.max(2, w / 110));
    g.fillStyle = COLORS.tick;
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'top';
    const first = Math.ceil(this.start / step) * step;
    for (let t = first; t < this.end; t += step) {
      const x = this.xOf(t);
      g.fillRect(x, 12, 1, 5);
      const withDate = step >= 3600e6 && new Date(t / 1000).getHours() === 0;
      const text = withDate ? fmtWall(t).slice(5, 10) : fmtWall(t, { date: false }).slice(0, step < 60e6 ? 8 : 5);
      g.fillText(text, x + 3, 1);
    }
    const now = Date.now() * 1000;
    if (now >= this.start && now <= this.end) {
      g.fillStyle = COLORS.now;
      g.fillRect(this.xOf(now) - 1, barTop, 2, barH);
    }
    if (this.cursor !== null && this.cursor !== undefined) {
      const x = this.xOf(this.cursor);
      g.fillStyle = COLORS.cursor;
      g.fillRect(x - 1, 10, 2, hgt - 10);
    }
    if (this.hover !== null) {
      const x = this.xOf(this.hover);
      g.fillStyle = COLORS.hover;
      g.fillRect(x, barTop, 1, barH);
      const gap = this.gapAt(this.hover);
      const what = gap ? ` — no footage (${gap.reason})` : (this.recordedAt(this.hover) ? '' : ' — no footage');
      this.label.textContent = `${fmtWall(this.hover)}${what}`;
    } else {
      this.label.textContent = `${fmtWall(this.start)} → ${fmtWall(this.end)} (${fmtDuration(span)})`;
    }
  }
}
