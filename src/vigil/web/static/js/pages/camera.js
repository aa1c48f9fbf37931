// One camera: live (main stream) or recorded playback, the timeline to scrub, recent
// events, and the export dialog. Shortcuts: Space/k play-pause, , . step a frame,
// j l ±10 s (Shift: ±1 min), Esc back to live, x export.

import * as api from '../api.js';
import { debounce, fmtWall, h, nowUs, toast } from '../dom.js';
import { openExportDialog } from '../export-dialog.js';
import { LivePlayer } from '../live.js';
import { Playback } from '../playback.js';
import { Timeline } from '../timeline.js';

const HOUR = 3600e6;
const ZOOMS = [['15 min', HOUR / 4], ['1 h', HOUR], ['6 h', 6 * HOUR], ['24 h', 24 * HOUR], ['7 d', 7 * 24 * HOUR]];

function activityOf(motion) {
  if (!motion || !motion.buckets) return [];
  const width = (motion.bucket_s || 1) * 1e6;
  const peak = Math.max(1e-6, ...motion.buckets.map((b) => b.peak || 0));
  return motion.buckets.map((b) => ({ start_us: b.start_us, end_us: b.start_us + width, level: (b.peak || 0) / peak }));
}

export async function render(main, params, ctx) {
  await ctx.refreshCameras();
  const name = params.camera;
  const info = ctx.cameraByName(name);
  if (!info) {
    main.append(h('div', { class: 'card' }, h('h1', { text: 'Camera not found' }),
      h('p', {}, 'There is no such camera, or it is not shared with you. ', h('a', { href: '#/', text: 'Back to the cameras' }))));
    return null;
  }
  const canLive = ctx.can(name, 'view_live') && info.enabled !== false;
  const canRec = ctx.can(name, 'view_recordings');
  const canExport = ctx.can(name, 'export');
  const canConfigure = ctx.can(name, 'configure');
  const fps = (info.health && info.health.fps) || 15;

  // -- layout ---------------------------------------------------------------------------
  const title = h('h1', { class: 'camera-title', text: info.title || name });
  const modeEl = h('span', { class: 'mode', id: 'mode' });
  const clock = h('span', { class: 'clock', id: 'clock', 'aria-live': 'off', text: '—' });
  const video = h('video', { class: 'playback', id: 'playback', playsinline: true, muted: true, '.muted': true, preload: 'auto', hidden: true, 'aria-label': `Recorded video of ${info.title || name}` });
  const message = h('p', { class: 'muted', role: 'status', id: 'player-message' });
  // WebRTC first on this page (one camera; ?live=mse keeps to MSE), MSE in the grid
  const transport = params.query.get('live');
  const live = canLive ? new LivePlayer(name, { stream: 'main', webrtc: transport !== 'mse' }) : null;
  const player = h('div', { class: 'player', id: 'player' }, live ? live.el : null, video);

  const btn = (text, label, onClick, id) => h('button', { type: 'button', text, 'aria-label': label, title: label, id, on: { click: onClick } });
  const liveBtn = btn('● Live', 'Back to live (Esc)', () => goLive(), 'btn-live');
  const soundBtn = btn('Sound off', 'Sound on or off (M)', () => toggleSound(), 'btn-sound');
  const playBtn = btn('Pause', 'Play or pause (Space)', () => toggle(), 'btn-play');
  const bar = h('div', { class: 'player-bar' }, modeEl, clock, h('span', { class: 'spacer' }),
    canLive && canRec ? liveBtn : null,
    canRec ? [
      btn('−1 min', 'Back one minute (Shift+J)', () => skip(-60)),
      btn('−10 s', 'Back 10 seconds (J)', () => skip(-10)),
      btn('◀|', 'Previous frame (,)', () => step(-1)),
      playBtn,
      btn('|▶', 'Next frame (.)', () => step(1)),
      btn('+10 s', 'Forward 10 seconds (L)', () => skip(10)),
      h('select', { 'aria-label': 'Playback speed', on: { change: (ev) => playback.setRate(Number(ev.target.value)) } },
        [0.25, 0.5, 1, 2, 4, 8].map((r) => h('option', { value: r, selected: r === 1, text: `${r}×` }))),
    ] : null,
    soundBtn,
    canExport ? btn('Export…', 'Export footage (X)', () => openExport(), 'btn-export') : null,
    canConfigure ? h('a', { class: 'button', href: `#/settings/${encodeURIComponent(name)}`, text: 'Settings' }) : null);

  const timeline = canRec ? new Timeline({
    onSeek: (us) => playRecorded(us),
    onWindow: debounce((s, e) => loadTimeline(s, e), 250),
  }) : null;
  const zoomBar = canRec ? h('div', { class: 'row' },
    h('span', { class: 'legend' },
      h('span', {}, h('i', { class: 'l-span' }), 'recorded'), h('span', {}, h('i', { class: 'l-gap' }), 'gap'),
      h('span', {}, h('i', { class: 'l-act' }), 'motion'), h('span', {}, h('i', { class: 'l-ev' }), 'event')),
    h('span', { class: 'spacer' }),
    ZOOMS.map(([label, span]) => btn(label, `Show the last ${label}`, () => timeline.setWindow(nowUs() - span * 0.95, nowUs() + span * 0.05)))) : null;

  const eventsList = h('div', { class: 'side-list', id: 'camera-events' });
  const side = h('aside', { class: 'card' }, h('h2', { text: 'Recent events' }), eventsList);
  main.append(h('div', { class: 'camera-page' },
    h('section', {}, h('div', { class: 'row' }, h('a', { href: '#/', text: '← All cameras' }), title), player, bar, message,
      timeline ? timeline.el : null, zoomBar),
    canRec ? side : null));

  // -- behaviour ------------------------------------------------------------------------
  let mode = 'live';
  let tlData = null;
  const playback = new Playback(name, video, {
    spans: () => (tlData ? tlData.spans : []),
    onState: (state, clip) => {
      player.dataset.playback = state;
      if (clip && clip.start_us !== undefined && state !== 'loading') player.dataset.clipStartUs = String(clip.start_us);
      if (clip && clip.requested_us !== undefined) player.dataset.requestedUs = String(Math.round(clip.requested_us));
      if (state === 'loading') message.textContent = 'Loading footage…';
      else if (state === 'ended') message.textContent = 'End of the recording.';
      else message.textContent = clip && clip.start_us > clip.requested_us + 1e6
        ? `No footage at the chosen time; playing from ${fmtWall(clip.start_us)}.` : '';
    },
    onError: (err) => {
      const gaps = err.details && err.details.gaps;
      message.textContent = err.code === 'no_footage'
        ? `No footage there${gaps && gaps.length ? ` (${gaps[0].reason})` : ''}.` : err.message;
    },
  });

  function setMode(m) {
    mode = m;
    modeEl.textContent = m === 'live' ? 'Live' : 'Recorded';
    modeEl.className = `mode ${m === 'live' ? 'live-mode' : 'rec-mode'}`;
    player.dataset.mode = m;
    if (live) live.el.hidden = m !== 'live';
    video.hidden = m === 'live';
    liveBtn.setAttribute('aria-pressed', String(m === 'live'));
  }

  function goLive() {
    if (!live) return;
    playback.stop();
    message.textContent = '';
    setMode('live');
    live.start();
  }

  function playRecorded(us) {
    if (!canRec) return;
    if (live) live.stop();
    setMode('recorded');
    if (timeline) timeline.setCursor(us);
    playback.playAt(us);
  }

  function skip(seconds) {
    if (mode === 'live') { playRecorded(nowUs() + seconds * 1e6); return; }
    playback.skip(seconds);
  }

  function step(dir) {
    if (mode === 'live') { if (live) live.setPaused(true); return; }
    playback.step(dir, fps);
  }

  function toggle() {
    if (mode === 'live') { if (live) live.setPaused(!live.userPaused); return; }
    playback.toggle();
  }

  function toggleSound() {
    const muted = !video.muted;
    video.muted = muted;
    if (live) live.video.muted = muted;
    soundBtn.textContent = muted ? 'Sound off' : 'Sound on';
    soundBtn.setAttribute('aria-pressed', String(!muted));
  }

  function openExport() {
    const at = mode === 'live' ? nowUs() : (playback.wallNow() ?? nowUs());
    openExportDialog(ctx, { camera: name, start_us: at - 30e6, end_us: Math.min(nowUs(), at + 30e6) });
  }

  let tlAbort = null;
  async function loadTimeline(s, e) {
    if (!timeline) return;
    if (tlAbort) tlAbort.abort();
    tlAbort = new AbortController();
    try {
      const doc = await api.get(api.url(api.cam(name, '/timeline'), { start: Math.round(s), end: Math.round(e), motion_buckets: 600 }), { signal: tlAbort.signal });
      tlData = doc;
      timeline.setData({ spans: doc.spans, gaps: doc.gaps, events: doc.events, activity: activityOf(doc.motion) });
    } catch (err) {
      if (err.name !== 'AbortError') message.textContent = `Timeline: ${err.message}`;
    }
  }

  async function loadEvents() {
    if (!canRec) return;
    try {
      const res = await api.get(api.url('/api/events', { camera: name, limit: 20 }));
      eventsList.replaceChildren(...(res.events.length ? res.events.map((ev) => {
        const b = h('button', { type: 'button', class: 'event-compact', dataset: { event: ev.id }, 'aria-label': `Play ${ev.label} event at ${fmtWall(ev.start_us)}` },
          ev.snapshot_url ? h('img', { src: ev.snapshot_url, alt: '', loading: 'lazy' }) : null,
          h('span', {}, h('strong', { text: ev.label }), h('br'), h('small', { class: 'muted', text: fmtWall(ev.start_us) })));
        b.addEventListener('click', () => playRecorded(ev.start_us - 2e6));
        return b;
      }) : [h('p', { class: 'muted', text: 'No events.' })]));
    } catch (err) {
      eventsList.replaceChildren(h('p', { class: 'error-text', text: err.message }));
    }
  }

  const onKey = (ev) => {
    const t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName) || t.isContentEditable)) return;
    if (document.querySelector('dialog[open]')) return;
    if (t && t.classList && t.classList.contains('timeline') && ['ArrowLeft', 'ArrowRight', 'Home', 'End', 'Enter', '+', '-'].includes(ev.key)) return;
    const k = ev.key;
    let handled = true;
    if (k === ' ' || k === 'k') toggle();
    else if (k === ',') step(-1);
    else if (k === '.') step(1);
    else if (k === 'j') skip(-10);
    else if (k === 'l') skip(10);
    else if (k === 'J') skip(-60);
    else if (k === 'L') skip(60);
    else if (k === 'Escape') goLive();
    else if (k === 'm') toggleSound();
    else if ((k === 'x' || k === 'X') && canExport) openExport();
    else handled = false;
    if (handled) ev.preventDefault();
  };
  document.addEventListener('keydown', onKey);

  const tick = setInterval(() => {
    const wall = mode === 'live' ? (live ? live.wallNow() : null) : playback.wallNow();
    const paused = mode === 'live' ? !!(live && live.userPaused) : video.paused;
    const label = paused ? 'Play' : 'Pause';
    if (playBtn.textContent !== label) playBtn.textContent = label;
    clock.textContent = wall ? fmtWall(wall, { ms: mode !== 'live' }) : '—';
    clock.dataset.wallUs = wall ? String(Math.round(wall)) : '';
    if (mode !== 'live' && timeline && wall) timeline.setCursor(wall);
  }, 100);
  let refresh = null;
  if (timeline) {
    const now = nowUs();
    timeline.setWindow(now - HOUR * 0.95, now + HOUR * 0.05);
    // keep the live edge of the timeline current
    refresh = setInterval(() => {
      if (timeline.end > nowUs() - 60e6) loadTimeline(timeline.start, timeline.end);
    }, 10000);
    loadEvents();
  }

  const at = Number(params.query.get('t'));
  if (canRec && at) playRecorded(at);
  else if (live) goLive();
  else if (canRec) {
    setMode('recorded');
    message.textContent = 'Live view is not shared with you: pick a time on the timeline.';
  }

  return () => {
    clearInterval(tick);
    clearInterval(refresh);
    document.removeEventListener('keydown', onKey);
    if (live) live.stop();
    playback.stop();
    if (timeline) timeline.destroy();
  };
}
