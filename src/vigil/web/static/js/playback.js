// Recorded playback of one camera in a <video>: a window of footage starting at the chosen
// instant is requested as a progressive MP4 (`playback.mp4?start=&end=`, HTTP ranges, no
// MSE needed) and the wall-clock time of the frame on screen is the clip's start time
// (X-Vigil-Start-Us: the frame on screen at the requested instant) plus currentTime.
//
// Windows never span a gap (they end where the recorded span ends), because the server
// collapses gaps inside one clip and a straight line from currentTime to wall time would
// then be wrong after the hole; at the end of a window the next one is requested.

import { ApiError, cam, url } from './api.js';

const WINDOW_US = 5 * 60e6;

export class Playback {
  /** `spansAfter(us)` returns the loaded spans [{start_us,end_us}] (to plan windows). */
  constructor(camera, video, { spans = () => [], onState = () => {}, onError = () => {} } = {}) {
    this.camera = camera;
    this.video = video;
    this.spans = spans;
    this.onState = onState;
    this.onError = onError;
    this.clip = null; // {start_us, end_us, next_start_us, requested_us}
    this.seq = 0;
    this.rate = 1;
    video.addEventListener('ended', () => this.onEnded());
    // Learn the frame duration from the frames actually presented (for frame steps).
    this.frameS = null;
    this.presented = null;
    if ('requestVideoFrameCallback' in video) {
      let last = null;
      const onFrame = (_now, meta) => {
        if (last !== null) {
          const d = meta.mediaTime - last;
          if (d > 0.001 && d < 1 && (this.frameS === null || Math.abs(d - this.frameS) < this.frameS * 0.5)) {
            this.frameS = this.frameS === null ? d : this.frameS * 0.8 + d * 0.2;
          }
        }
        last = meta.mediaTime;
        this.presented = meta.mediaTime; // presentation time of the frame on screen
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
  }

  /** Wall-clock µs of the frame on screen, or null. */
  wallNow() {
    if (!this.clip || this.video.readyState < 1) return this.clip ? this.clip.start_us : null;
    return this.clip.start_us + Math.round(this.video.currentTime * 1e6);
  }

  /** Where a window starting at `us` should end: the end of its span, at most WINDOW_US. */
  windowEnd(us) {
    const span = this.spans().find((s) => s.start_us <= us && us < s.end_us);
    let end = us + WINDOW_US;
    if (span) end = Math.min(end, span.end_us);
    return Math.min(end, Date.now() * 1000);
  }

  /** The first recorded instant at or after `us` per the loaded spans (or `us`). */
  nextRecorded(us) {
    const spans = this.spans();
    if (!spans.length || spans.some((s) => s.start_us <= us && us < s.end_us)) return us;
    const next = spans.filter((s) => s.start_us > us).sort((a, b) => a.start_us - b.start_us)[0];
    return next ? next.start_us : us;
  }

  async playAt(us, { play = true } = {}) {
    const seq = ++this.seq;
    let start = Math.round(us);
    const jumped = this.nextRecorded(start);
    if (jumped !== start) start = jumped;
    let end = this.windowEnd(start);
    if (end - start < 1e6) end = start + 1e6;
    const href = url(cam(this.camera, '/playback.mp4'), { start, end });
    this.onState('loading', { requested_us: us, start_us: start });
    let res;
    try {
      res = await fetch(href, { headers: { Range: 'bytes=0-0' }, credentials: 'same-origin' });
    } catch (err) {
      this.onError(new ApiError(0, 'network', 'network error'));
      return false;
    }
    if (seq !== this.seq) return false; // a newer request superseded this one
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch (_) { /* empty */ }
      const e = body && body.error ? body.error : { code: `http_${res.status}`, message: res.statusText };
      this.onError(new ApiError(res.status, e.code, e.message, e.details));
      return false;
    }
    const hdr = (name) => {
      const v = res.headers.get(name);
      return v === null ? null : Number(v);
    };
    this.clip = {
      requested_us: us,
      start_us: hdr('X-Vigil-Start-Us') ?? start,
      end_us: hdr('X-Vigil-End-Us') ?? end,
      next_start_us: hdr('X-Vigil-Next-Start-Us'),
      window_end_us: end,
    };
    const v = this.video;
    v.src = href;
    v.playbackRate = this.rate;
    if (play) {
      try { await v.play(); } catch (_) { /* autoplay refused: stays paused */ }
    }
    if (seq === this.seq) this.onState(v.paused ? 'paused' : 'playing', this.clip);
    return true;
  }

  onEnded() {
    if (!this.clip) return;
    // continue with the next part (codec change) or the next recorded span
    const after = this.clip.next_start_us ?? this.nextRecorded(this.clip.window_end_us);
    if (after && after < Date.now() * 1000 - 1e6 && after >= this.clip.window_end_us - 1) {
      this.playAt(after);
    } else {
      this.onState('ended', this.clip);
    }
  }

  toggle() {
    const v = this.video;
    if (v.paused) v.play().catch(() => {});
    else v.pause();
  }

  /** Step one frame (`dir` = ±1); pauses first. Aims at the middle of the neighbouring
   * frame, so rounding at a frame boundary can never leave the picture where it was. */
  step(dir, fps = 15) {
    const v = this.video;
    v.pause();
    const frame = this.frameS || 1 / Math.max(1, fps);
    const shown = this.presented !== null && Math.abs(this.presented - v.currentTime) < frame
      ? this.presented : Math.floor(v.currentTime / frame + 1e-3) * frame;
    v.currentTime = Math.max(0, shown + (dir + 0.5) * frame);
  }

  /** Move by `seconds`; leaves the window (new request) when outside it. */
  skip(seconds) {
    const now = this.wallNow();
    if (now === null) return;
    const target = now + seconds * 1e6;
    const v = this.video;
    const t = v.currentTime + seconds;
    if (this.clip && t >= 0 && (Number.isNaN(v.duration) || t < v.duration)) v.currentTime = t;
    else this.playAt(target, { play: !v.paused });
  }

  setRate(rate) {
    this.rate = rate;
    this.video.playbackRate = rate;
  }

  stop() {
    this.seq += 1;
    this.clip = null;
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
  }
}
