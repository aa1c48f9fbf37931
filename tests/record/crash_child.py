"""Child process for the crash tests: records a clip like production would, until killed.

Usage: crash_child.py CLIP ROOT CATALOG FEDLOG SESSION_ID WALL_START_US SPEED

It runs a ``Recorder`` (fsync after every fragment, JSON-lines catalog) fed in paced time,
and appends one line per packet *after* the recorder accepted it to FEDLOG
(``kind dts_us wall_us keyframe``), written with a single ``os.write`` on an O_APPEND
descriptor so a kill never leaves a line the parent could misread as complete.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feeder import FeedResult, JsonLinesCatalog, feed_file

from vigil.config.model import RecordingConfig
from vigil.ingest.types import TimedPacket
from vigil.record import Recorder


def main() -> None:
    clip, root, catalog_path, fed_log = (Path(a) for a in sys.argv[1:5])
    session_id = int(sys.argv[5])
    wall_start = int(sys.argv[6])
    speed = float(sys.argv[7])
    catalog = JsonLinesCatalog(catalog_path)
    recorder = Recorder(
        "cam", root, catalog, RecordingConfig(segment_seconds=3, fragment_seconds=1),
        fsync_fragments=True,
    )
    fd = os.open(fed_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log_packet(pkt: TimedPacket, _result: FeedResult) -> None:
        line = f"{pkt.kind} {pkt.dts_us} {pkt.wall_us} {int(pkt.keyframe)}\n"
        os.write(fd, line.encode())

    os.write(fd, b"start\n")
    feed_file(recorder, clip, session_id=session_id, wall_start_us=wall_start, speed=speed,
              on_packet=log_packet, end_reason="eof")
    os.write(fd, b"done\n")
    os.close(fd)


if __name__ == "__main__":
    main()
