"""Proof that a segment plays: decode it end to end.

The recorder never decodes; this is the one place that does, for tests and for
``vigil verify``. A file "plays" when it opens, every packet of every stream demuxes, the
decoders raise no error, no decoded frame is flagged corrupt, and every video packet
yields a frame (a truncated or mis-framed sample would either raise or be dropped by
the decoder, which the count catches).
"""

from __future__ import annotations

from pathlib import Path


def verify_playable(path: Path, *, require_video: bool = True) -> tuple[bool, str]:
    """(ok, detail): ``detail`` summarises frames and duration, or says what failed."""
    import av  # not at module level: vigil.record (the recorder) must not load PyAV

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        return False, f"cannot open: {exc}"
    try:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        if require_video and not container.streams.video:
            return False, "no video stream"
        packets = {s.index: 0 for s in streams}
        frames = {s.index: 0 for s in streams}
        corrupt = 0
        last_end = 0.0
        for packet in container.demux(streams):
            idx = packet.stream.index
            if packet.size:
                packets[idx] += 1
                if packet.pts is not None and packet.time_base is not None:
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    last_end = max(last_end, end)
            for frame in packet.decode():  # also called with the flush packet at the end
                frames[idx] += 1
                if getattr(frame, "is_corrupt", False):
                    corrupt += 1
        parts = []
        for s in streams:
            parts.append(f"{s.type} {s.codec_context.name} {frames[s.index]}/{packets[s.index]}")
        detail = f"{', '.join(parts)} frames/packets, {last_end:.3f} s"
        if corrupt:
            return False, f"{corrupt} corrupt frames; {detail}"
        for s in streams:
            if s.type == "video" and frames[s.index] != packets[s.index]:
                return False, f"video frames lost in decoding; {detail}"
            if packets[s.index] == 0:
                return False, f"empty {s.type} stream; {detail}"
        return True, detail
    except (av.FFmpegError, OSError, ValueError) as exc:
        return False, f"decode failed: {exc}"
    finally:
        container.close()
