"""Live view: camera streams fanned out to browsers as fragmented MP4 (stream copy), with
an MJPEG fallback for codecs a browser cannot play.

Public API:

* :class:`LiveHub` - a ``PacketSink`` per camera stream; ``subscribe()`` gives a
  :class:`LiveViewer` (bounded queue of :class:`LiveInit` / :class:`LiveFragment` /
  :class:`LiveNotice`), ``subscribe_jpeg()`` a :class:`LatestSlot` of JPEG frames,
  ``subscribe_rtc()`` a WebRTC peer's H.264 passthrough track (:mod:`vigil.live.webrtc`,
  which also holds :class:`~vigil.live.webrtc.RtcPeers`, the API's peer connections).
* :class:`LiveRegistry` - the hubs of a running NVR by camera and stream.
"""

from vigil.live.hub import FragmentMode, HubStats, LiveHub, LiveRegistry
from vigil.live.viewer import LatestSlot, LiveFragment, LiveInit, LiveItem, LiveNotice, LiveViewer
from vigil.record.fmp4 import Fmp4Error, InitSegment, build_fragment, build_init_segment

__all__ = [
    "Fmp4Error",
    "FragmentMode",
    "HubStats",
    "InitSegment",
    "LatestSlot",
    "LiveFragment",
    "LiveHub",
    "LiveInit",
    "LiveItem",
    "LiveNotice",
    "LiveRegistry",
    "LiveViewer",
    "build_fragment",
    "build_init_segment",
]
