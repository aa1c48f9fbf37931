// Live view of one camera: a WebSocket delivering fragmented MP4 into Media Source
// Extensions, with an MJPEG fallback for codecs this browser cannot play, automatic
// reconnection, and the wall-clock time of the frame on screen.
//
// Protocol (see docs/web.md): the server sends a JSON text message
// {"type":"init","mime":...,"media_us":...,"wall_us":...} followed by one binary message
// (the init segment), then binary media fragments. {"type":"ended"} means the camera
// session ended (a new init follows when it is back). With ?format=mjpeg the server sends
// {"type":"frame","wall_us":...} followed by one binary JPEG per picture.

import { cam, get, url, wsUrl } from './api.js';
import { h } from './dom.js';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const STALL_MS = 12000; // no data for this long on an open socket: reconnect
const MAX_LAG_S = 1.5; // further than this behind the live edge: jump to it
const KEEP_BEHIND_S = 8; // buffered media kept behind the playhead
const MAX_QUEUE = 120; // fragments waiting for the SourceBuffer (tab in background)

// Codecs this browser cannot play through MSE, remembered per page load so the second
// time a camera is opened it goes straight to the fallback.
const unsupported = new Set();

export function mseSupports(mime) {
  if (unsupported.has(mime)) return false;
  const MS = window.MediaSource || window.ManagedMediaSource;
  const ok = !!MS && MS.isTypeSupported(mime);
  if (!ok) unsupported.add(mime);
  return ok;
}

/**
 * A live player element. `stream` is 'sub' (grid) or 'main' (single camera).
 * `onStatus(state, detail)` gets: connecting, live, fallback, offline, denied, error.
 */
export class LivePlayer {
  constructor(camera, { stream = 'sub', controls = false, onStatus = () => {} } = {}) {
    this.camera = camera;
    this.stream = stream;
    this.onStatus = onStatus;
    this.video = h('video', {
      class: 'live-video', muted: true, autoplay: true, playsinline: true,
      '.muted': true, 'aria-label': `Live video of ${camera}`, controls: controls || null,
    });
    this.img = h('img', { class: 'live-img', alt: `Live picture of ${camera}`, hidden: true });
    this.badge = h('span', { class: 'live-badge', text: '' });
    this.el = h('div', { class: 'live' }, this.video, this.img, this.badge);
    this.mjpeg = false;
    this.stopped = true;
    this.ws = null;
    this.retryMs = RETRY_MIN_MS;
    this.anchor = null; // {media_us, wall_us}
    this.frameWall = null; // MJPEG: wall time of the picture shown
    this.pendingWall = null;
    this.lastData = 0;
    this.state = '';
    this.imgUrl = null;
    this.userPaused = false;
    this.resetMse(null);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000); this.ws = null; }
    this.resetMse(null);
    if (this.imgUrl) URL.revokeObjectURL(this.imgUrl);
    this.imgUrl = null;
  }

  setStatus(state, detail = '') {
    this.state = state;
    this.el.dataset.state = state;
    const labels = { connecting: 'Connecting…', offline: 'Camera offline', denied: 'No access', error: 'Error', fallback: '' };
    this.badge.textContent = labels[state] ?? '';
    if (detail) this.badge.title = detail;
    this.onStatus(state, detail);
  }

  /** Freeze the picture (true) or go back to the live edge (false). */
  setPaused(paused) {
    this.userPaused = paused;
    this.el.classList.toggle('is-paused', paused);
    if (paused) {
      this.video.pause();
    } else if (!this.mjpeg && this.ms) {
      // fragments were dropped while paused: start again at the newest keyframe
      this.resetMse(this.mime);
      this.reconnect(true);
    }
  }

  /** Wall-clock µs of the picture on screen, or null. */
  wallNow() {
    if (this.mjpeg) return this.frameWall;
    if (!this.anchor || this.video.readyState < 2) return null;
    return this.anchor.wall_us + (this.video.currentTime * 1e6 - this.anchor.media_us);
  }

  connect() {
    if (this.stopped) return;
    this.setStatus('connecting');
    const path = url(cam(this.camera, '/live'), { stream: this.stream, format: this.mjpeg ? 'mjpeg' : 'mp4' });
    const ws = new WebSocket(wsUrl(path));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.fresh = true; // a new connection starts a new MediaSource (see onControl)
    this.lastData = Date.now();
    this.opened = false;
    ws.onopen = () => { this.opened = true; };
    ws.onmessage = (ev) => this.onMessage(ev);
    ws.onclose = (ev) => this.onClose(ev);
  }

  async onClose(ev) {
    this.ws = null;
    if (this.stopped) return;
    if (ev.code === 1006 && !this.opened) {
      // A refused handshake looks like a network error to a page; ask over HTTP why.
      try {
        await get(cam(this.camera));
      } catch (err) {
        if (this.stopped) return;
        if (err.status === 401 || err.status === 403 || err.status === 404) {
          this.setStatus('denied', err.message);
          return;
        }
      }
      if (this.stopped) return;
    }
    // 1008 policy violation / 4401 / 4403: not allowed; do not hammer the server
    if (ev.code === 1008 || ev.code === 4401 || ev.code === 4403 || ev.code === 4404) {
      this.setStatus('denied', ev.reason || 'not allowed');
      return;
    }
    if (this.state !== 'offline') this.setStatus('connecting', ev.reason || 'reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  reconnect(now = false) {
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000); this.ws = null; }
    clearTimeout(this.retryTimer);
    if (now) this.connect();
    else this.onClose({ code: 1006, reason: 'reconnecting' });
  }

  onMessage(ev) {
    this.lastData = Date.now();
    if (typeof ev.data === 'string') {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      this.onControl(msg);
      return;
    }
    if (this.mjpeg) this.showJpeg(ev.data);
    else this.enqueue(ev.data);
  }

  onControl(msg) {
    if (msg.type === 'init') {
      this.retryMs = RETRY_MIN_MS;
      if (this.mjpeg) { this.setStatus('fallback', msg.reason || ''); return; }
      if (!mseSupports(msg.mime)) {
        this.useMjpeg(); // e.g. H.265 in Chromium: ask for JPEG pictures instead
        return;
      }
      this.anchor = { media_us: msg.media_us, wall_us: msg.wall_us };
      // Within one connection media time only grows, so a new camera session with the
      // same codecs keeps appending; a new connection (or server) may restart it.
      if (this.fresh || this.mime !== msg.mime || !this.ms) this.resetMse(msg.mime);
      this.fresh = false;
      this.setStatus('live');
    } else if (msg.type === 'unsupported') {
      this.useMjpeg(); // a codec MP4 cannot carry: the server decodes it for us
    } else if (msg.type === 'frame') {
      this.pendingWall = msg.wall_us;
    } else if (msg.type === 'ended') {
      this.setStatus('offline', msg.detail || '');
    } else if (msg.type === 'error') {
      this.setStatus('error', msg.message || '');
    }
  }

  // -- MJPEG fallback -------------------------------------------------------------------

  useMjpeg() {
    this.mjpeg = true;
    this.el.classList.add('is-mjpeg');
    this.resetMse(null);
    this.video.hidden = true;
    this.img.hidden = false;
    this.reconnect(true);
  }

  showJpeg(buf) {
    if (this.userPaused) return;
    const next = URL.createObjectURL(new Blob([buf], { type: 'image/jpeg' }));
    const prev = this.imgUrl;
    this.imgUrl = next;
    this.img.src = next;
    this.frameWall = this.pendingWall;
    if (this.state !== 'fallback') this.setStatus('fallback');
    if (prev) setTimeout(() => URL.revokeObjectURL(prev), 1000);
  }

  // -- MSE ------------------------------------------------------------------------------

  resetMse(mime) {
    if (this.video.src && this.video.src.startsWith('blob:')) {
      URL.revokeObjectURL(this.video.src);
    }
    this.queue = [];
    this.sb = null;
    this.ms = null;
    this.mime = mime;
    if (!mime) {
      this.video.removeAttribute('src');
      return;
    }
    const MS = window.MediaSource || window.ManagedMediaSource;
    const ms = new MS();
    this.ms = ms;
    this.video.disableRemotePlayback = true;
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      if (this.ms !== ms) return;
      try {
        this.sb = ms.addSourceBuffer(mime);
        this.sb.mode = 'segments';
        this.sb.addEventListener('updateend', () => this.pump());
        this.sb.addEventListener('error', () => this.reconnect());
      } catch (err) {
        unsupported.add(mime);
        this.setStatus('error', String(err));
        return;
      }
      this.pump();
    }, { once: true });
  }

  enqueue(buf) {
    if (!this.ms || this.userPaused) return;
    this.queue.push(buf);
    if (this.queue.length > MAX_QUEUE) {
      // the page could not keep up (hidden tab): start again at the newest keyframe
      this.resetMse(this.mime);
      this.reconnect(true);
      return;
    }
    this.pump();
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.ms || this.ms.readyState !== 'open') return;
    const v = this.video;
    if (v.buffered.length) {
      const start = v.buffered.start(0);
      const end = v.buffered.end(v.buffered.length - 1);
      if (v.currentTime < start || end - v.currentTime > MAX_LAG_S) {
        v.currentTime = Math.max(start, end - 0.05);
      }
      if (v.currentTime - start > KEEP_BEHIND_S * 2) {
        sb.remove(start, v.currentTime - KEEP_BEHIND_S);
        return; // updateend pumps again
      }
    }
    const next = this.queue.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
    } catch (err) {
      if (err.name === 'QuotaExceededError' && v.buffered.length) {
        this.queue.unshift(next);
        sb.remove(v.buffered.start(0), Math.max(v.buffered.start(0) + 0.1, v.currentTime - 1));
      } else {
        this.reconnect();
      }
      return;
    }
    if (v.paused && v.readyState >= 2 && !this.userPaused) v.play().catch(() => {});
  }

  tick() {
    if (this.stopped) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state !== 'offline'
        && Date.now() - this.lastData > STALL_MS) {
      this.reconnect();
      return;
    }
    const v = this.video;
    if (!this.mjpeg && v.paused && v.readyState >= 2 && !this.userPaused) v.play().catch(() => {});
  }
}
