// WebRTC live view of one camera. The server passes the camera's H.264 through (never
// decodes or re-encodes it) and the browser plays it with its WebRTC stack, whose jitter
// buffer holds tens of milliseconds where MSE holds a few frames (see docs/web.md for
// the measurements).
//
// Signalling is one HTTP exchange, non-trickle: the page gathers its ICE candidates,
// POSTs the offer (with the CSRF header, like every state-changing request) to
// /api/cameras/<camera>/webrtc?stream=..., and gets the answer with the server's
// candidates. DELETE /api/cameras/<camera>/webrtc?peer=<id> closes the server's side.
// No ICE servers are given to the browser: the server never tells it to contact a third
// party, and on a LAN host candidates connect directly.

import { cam, del, post, url } from './api.js';

const GATHER_MS = 2500; // a stuck candidate gatherer does not hold the offer back longer

export function rtcSupported() {
  return typeof window.RTCPeerConnection === 'function'
    && typeof window.RTCRtpReceiver === 'function';
}

function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    }, ms);
    pc.addEventListener('icegatheringstatechange', done);
  });
}

/**
 * One peer connection to the server for `camera` (`stream` 'main' or 'sub'). `onTrack`
 * gets the MediaStream to show, `onState` every RTCPeerConnection.connectionState.
 * `open()` throws the API's ApiError when the server refuses (e.g. 409 unsupported_codec
 * for H.265: the caller falls back to MSE).
 */
export class RtcLink {
  constructor(camera, stream, { onTrack = () => {}, onState = () => {} } = {}) {
    this.camera = camera;
    this.stream = stream;
    this.onTrack = onTrack;
    this.onState = onState;
    this.pc = null;
    this.id = null;
    this.closed = false;
  }

  async open() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addEventListener('track', (ev) => {
      if (this.closed) return;
      this.onTrack(ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]));
    });
    pc.addEventListener('connectionstatechange', () => {
      if (!this.closed) this.onState(pc.connectionState);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_MS);
    if (this.closed) return;
    const res = await post(url(cam(this.camera, '/webrtc'), { stream: this.stream }),
      { type: 'offer', sdp: pc.localDescription.sdp });
    this.id = res.id;
    if (this.closed) { this.close(); return; }
    await pc.setRemoteDescription({ type: 'answer', sdp: res.sdp });
  }

  /** Seconds the browser holds frames before showing them (jitter buffer), or null. */
  async bufferDelay() {
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    let delay = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.jitterBufferEmittedCount) {
        delay = s.jitterBufferDelay / s.jitterBufferEmittedCount;
      }
    });
    return delay;
  }

  close() {
    this.closed = true;
    if (this.pc) { this.pc.close(); this.pc = null; }
    const id = this.id;
    this.id = null;
    if (id) del(url(cam(this.camera, '/webrtc'), { peer: id })).catch(() => {});
  }
}
