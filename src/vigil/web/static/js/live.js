// Live view of one camera: a WebSocket delivering fragmented MP4 into Media Source
// Extensions, with an MJPEG fallback for codecs this browser cannot play, automatic
// reconnection, and the wall-clock time of the frame on screen. With `webrtc: true` (the
// single-camera page) it first tries WebRTC (webrtc.js: H.264 passed through, the
// browser's jitter buffer instead of MSE's) and falls back to MSE when the server or the
// browser cannot (H.265, WebRTC disabled, too many peers, no ICE path).
//
// Staying at the live edge with MSE: the page starts playing a few frame intervals behind
// the newest buffered frame, then plays at 1.25x while more than about a frame interval
// plus a margin is buffered ahead of the playhead and at 1x below it, so whatever start-up
// or a hiccup of the network added is played off within seconds instead of staying for
// the whole session. A stall ('waiting') widens the margin; far behind (a hidden tab)
// jumps to the edge.
//
// Protocol (see docs/web.md): the server sends a JSON text message
// {"type":"init","mime":...,"media_us":...,"wall_us":...} followed by one binary message
// (the init segment), then binary media fragments. {"type":"ended"} means the camera
// session ended (a new init follows when it is back). With ?format=mjpeg the server sends
// {"type":"frame","wall_us":...} followed by one binary JPEG per picture.

import { cam, get, url, wsUrl } from './api.js';
import { h } from './dom.js';
import { RtcLink, rtcSupported } from './webrtc.js';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const STALL_MS = 12000; // no data for this long on an open socket: reconnect
const MAX_LAG_S = 1.5; // further than this behind the live edge: jump to it
const FRAME_S = 1 / 15; // frame interval assumed until the stream shows its own
const MARGIN_S = 0.08; // buffered beyond one frame interval, against network jitter
const MARGIN_STEP_S = 0.04; // added to the margin by each stall while live
const MARGIN_MAX_S = 0.5;
const CHASE_BAND_S = 0.05; // hysteresis between speeding up and back to 1x
const CHASE_RATE = 1.25;
const START_FRAMES = 2.5; // start this many frame intervals behind the newest frame
const RTC_FIRST_FRAME_MS = 10000; // WebRTC connected but no picture this long: give up
const RTC_MAX_FAILURES = 2; // WebRTC attempts that never showed a frame before MSE
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
  constructor(camera, { stream = 'sub', controls = false, webrtc = false, onStatus = () => {} } = {}) {
    this.camera = camera;
    this.stream = stream;
    this.onStatus = onStatus;
    // WebRTC first (single camera), unless this browser cannot; off for good once the
    // server refuses it or it keeps failing, so the page settles on MSE
    this.rtcWanted = webrtc && rtcSupported();
    this.rtc = null;
    this.rtcFailures = 0;
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
    this.frameS = FRAME_S;
    this.margin = MARGIN_S;
    this.video.addEventListener('waiting', () => {
      // an underflow while live: keep a little more in hand from now on
      if (this.ms && this.started && !this.userPaused && !this.video.seeking) {
        this.margin = Math.min(MARGIN_MAX_S, this.margin + MARGIN_STEP_S);
      }
    });
    this.resetMse(null);
  }

  /** 'webrtc', 'mse' or 'mjpeg': how the picture gets here now. */
  get transport() {
    if (this.mjpeg) return 'mjpeg';
    return this.rtc ? 'webrtc' : 'mse';
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  /** Connect by the best transport still in the running. */
  open() {
    if (this.stopped) return;
    if (this.rtcWanted && !this.mjpeg) this.openRtc();
    else this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000); this.ws = null; }
    this.closeRtc();
    this.resetMse(null);
    if (this.imgUrl) URL.revokeObjectURL(this.imgUrl);
    this.imgUrl = null;
  }

  setStatus(state, detail = '') {
    this.state = state;
    this.el.dataset.state = state;
    this.el.dataset.transport = this.transport;
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
    } else if (this.rtc) {
      this.video.play().catch(() => {}); // a live MediaStream resumes at the live edge
    } else if (!this.mjpeg && this.ms) {
      // fragments were dropped while paused: start again at the newest keyframe
      this.resetMse(this.mime);
      this.reconnect(true);
    }
  }

  /** Wall-clock µs of the picture on screen, or null. */
  wallNow() {
    if (this.mjpeg) return this.frameWall;
    if (this.rtc) {
      // approximate: now minus what the browser's jitter buffer holds (RTP timestamps
      // carry no wall clock the page could read)
      if (this.video.readyState < 2) return null;
      return Date.now() * 1000 - (this.rtcDelayS || 0) * 1e6;
    }
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

  // -- WebRTC ---------------------------------------------------------------------------

  openRtc() {
    this.setStatus('connecting');
    this.resetMse(null);
    const link = new RtcLink(this.camera, this.stream, {
      onTrack: (stream) => {
        if (this.rtc !== link) return;
        this.video.srcObject = stream;
        this.video.play().catch(() => {});
      },
      onState: (state) => this.onRtcState(link, state),
    });
    this.rtc = link;
    this.rtcLive = false;
    this.rtcOpened = Date.now();
    this.rtcLastTime = -1;
    this.rtcLastMove = Date.now();
    this.el.dataset.transport = 'webrtc';
    link.open().catch((err) => {
      if (this.rtc !== link) return;
      const status = err && err.status;
      if (status === 401 || status === 403 || status === 404) {
        this.closeRtc();
        this.setStatus('denied', err.message);
        return;
      }
      // refused by the server (codec, disabled, too many peers, bad offer) or no
      // WebRTC here after all: MSE from now on
      this.rtcWanted = false;
      this.closeRtc();
      this.connect();
    });
  }

  onRtcState(link, state) {
    if (this.rtc !== link || this.stopped) return;
    if (state === 'failed' || state === 'closed') this.rtcLost(state);
  }

  /** The peer connection ended or never showed a picture: reconnect, or go to MSE. */
  rtcLost(reason) {
    const wasLive = this.rtcLive;
    this.closeRtc();
    if (!wasLive) this.rtcFailures += 1;
    else this.rtcFailures = 0;
    if (this.rtcFailures >= RTC_MAX_FAILURES) {
      this.rtcWanted = false;
      this.connect();
      return;
    }
    this.setStatus('connecting', `WebRTC ${reason}; reconnecting`);
    this.retryTimer = setTimeout(() => this.open(), this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  closeRtc() {
    if (!this.rtc) return;
    this.rtc.close();
    this.rtc = null;
    this.rtcLive = false;
    this.video.srcObject = null;
  }

  rtcTick() {
    const v = this.video;
    const now = Date.now();
    if (v.readyState >= 2 && v.currentTime !== this.rtcLastTime) {
      this.rtcLastTime = v.currentTime;
      this.rtcLastMove = now;
      if (!this.rtcLive) {
        this.rtcLive = true;
        this.rtcFailures = 0;
        this.retryMs = RETRY_MIN_MS;
        this.setStatus('live');
      }
    }
    if (this.userPaused) { this.rtcLastMove = now; return; }
    if (!this.rtcLive && now - this.rtcOpened > RTC_FIRST_FRAME_MS) {
      this.rtcLost('showed no picture');
    } else if (this.rtcLive && now - this.rtcLastMove > STALL_MS) {
      this.rtcLost('stalled');
    } else if (this.rtc) {
      const link = this.rtc;
      link.bufferDelay().then((d) => { if (this.rtc === link && d !== null) this.rtcDelayS = d; })
        .catch(() => {});
      if (v.paused && v.readyState >= 2) v.play().catch(() => {});
    }
  }

  // -- MJPEG fallback -------------------------------------------------------------------

  useMjpeg() {
    this.closeRtc();
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
    this.started = false; // playback not yet placed behind the live edge
    this.lastEnd = null;
    this.video.playbackRate = 1;
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
    this.video.srcObject = null;
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
      this.chase();
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

  /**
   * Keep the playhead just behind the newest buffered frame (see the top of the file).
   * Runs after every append (one fragment per frame, so at the frame rate), when the
   * newest frame has just arrived and the buffered time ahead is at its largest.
   */
  chase() {
    const v = this.video;
    const last = v.buffered.length - 1;
    const start = v.buffered.start(0);
    const end = v.buffered.end(last);
    // the frame interval, from how far the buffered edge moves per fragment (the
    // catch-up fragment of a new connection holds many frames: not counted)
    if (this.lastEnd !== null) {
      const step = end - this.lastEnd;
      if (step > 0.005 && step < 0.5) this.frameS = this.frameS * 0.8 + step * 0.2;
    }
    this.lastEnd = end;
    const target = this.frameS + this.margin; // wanted ahead of the playhead, just appended
    if (!this.started || v.currentTime < start || end - v.currentTime > MAX_LAG_S) {
      this.started = true;
      const at = Math.max(start, end - Math.max(target, START_FRAMES * this.frameS));
      if (Math.abs(v.currentTime - at) > 0.001) {
        v.currentTime = at; // appending may go on while seeking inside the buffer
        v.playbackRate = 1;
        return;
      }
    }
    if (this.userPaused) return;
    const ahead = end - v.currentTime;
    if (ahead > target + CHASE_BAND_S) {
      if (v.playbackRate !== CHASE_RATE) v.playbackRate = CHASE_RATE;
    } else if (ahead < target) {
      if (v.playbackRate !== 1) v.playbackRate = 1;
    }
  }

  tick() {
    if (this.stopped) return;
    if (this.rtc) { this.rtcTick(); return; }
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state !== 'offline'
        && Date.now() - this.lastData > STALL_MS) {
      this.reconnect();
      return;
    }
    const v = this.video;
    if (!this.mjpeg && v.paused && v.readyState >= 2 && !this.userPaused) v.play().catch(() => {});
  }
}
