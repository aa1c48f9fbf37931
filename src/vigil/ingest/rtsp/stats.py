"""Counters of one native RTSP connection, for health pages, benchmarks and tests.

Plain integer attributes on a slotted object: the reading thread increments them (the
per-packet ones in batches, see ``client``), other threads may read them at any time
without a lock because a torn read of a counter is harmless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class RtspStats:
    recv_calls: int = 0  # recv_into system calls that returned data
    bytes_received: int = 0  # everything read from the socket, RTSP messages included
    rtp_packets: int = 0  # interleaved packets on a channel we set up (RTP, not RTCP)
    skipped_packets: int = 0  # interleaved packets on channels not read (RTCP, ...)
    lost_packets: int = 0  # RTP sequence numbers skipped (forward gaps)
    out_of_order: int = 0  # sequence numbers going backwards (duplicates, restarts)
    dropped_units: int = 0  # access units not emitted because they were incomplete
    oversized_units: int = 0  # access units over the size limit, dropped
    ignored_packets: int = 0  # unsupported packetizations (STAP-B, MTAP, FU-B, PACI, ...)
    malformed_packets: int = 0  # RTP packets too short or inconsistent to parse
    units: int = 0  # access units emitted
    control_messages: int = 0  # RTSP messages read between media packets (keep-alives)
    keepalives_sent: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
