"""The recorder process: wires every camera's ingest to its recorder and the index, and runs
the housekeeping loops (retention, health). `vigil run` and `vigil demo` are thin shells
around :class:`NVR`.

Start-up order matters: first finish interrupted deletions and recover crashed segments
(reconcile), then note where each camera's footage ended (so the downtime becomes a
``restart`` gap), then connect cameras. Shut-down closes open segments cleanly.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from vigil.config.analytics_model import CameraAnalytics

if TYPE_CHECKING:
    from vigil.analytics.sink import AnalyticsSink
from vigil.config.model import CameraConfig, VigilConfig
from vigil.events.notifier import Notifier, build_notifier
from vigil.evidence.chain import install_chain
from vigil.evidence.keys import KeyStore
from vigil.evidence.report import EvidenceError
from vigil.index.auth_models import CameraSettings
from vigil.index.db import Database
from vigil.index.models import Camera, Segment
from vigil.index.repository import Index
from vigil.ingest.loop import ReadLoop
from vigil.ingest.reader import CameraReader
from vigil.ingest.types import PacketSink, StreamSession, TimedPacket
from vigil.live.hub import LiveRegistry
from vigil.record.recorder import Recorder
from vigil.record.recovery import describe_segment, recover_storage
from vigil.record.types import GapInfo
from vigil.storage.retention import Retention

log = logging.getLogger(__name__)

STATUS_INTERVAL = 2.0
OPTIMIZE_INTERVAL = 3600.0  # seconds between refreshes of the index's planner statistics
# The parts of a camera's analytics that the web UI edits (table camera_settings).
_EDITABLE = ("zones", "lines", "motion_masks", "privacy_masks")


class StartupError(RuntimeError):
    """The recorder cannot start at all (index unusable); the message says why."""


class RestartGapSink:
    """Records the time the recorder was not running (from the previous run's last segment
    to this run's first packet) as an explicit ``restart`` gap.

    It is a packet sink placed before the recorder, so the gap is written as soon as
    recording resumes: a run that is killed again before it closes any segment still
    leaves its gap behind (its partial segment is recovered at the next start).
    """

    def __init__(self, index: Index, camera: str, last_end_us: int | None) -> None:
        self.index = index
        self.camera = camera
        self._last_end_us = last_end_us

    def session_started(self, session: StreamSession) -> None:
        pass

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        last, self._last_end_us = self._last_end_us, None
        if last is not None and pkt.wall_us > last:
            self.index.gap(GapInfo(self.camera, last, pkt.wall_us, "restart", "not recording"))

    def session_ended(self, session: StreamSession, reason: str) -> None:
        pass


@dataclass
class CameraUnit:
    config: CameraConfig
    reader: CameraReader
    recorder: Recorder | None
    sub_reader: CameraReader | None = None
    analytics: AnalyticsSink | None = None
    analytics_error: str | None = None
    online: bool | None = None  # last state told to the notifier
    settings_version: int = 0  # camera_settings version the pipeline was built from

    def readers(self) -> list[CameraReader]:
        return [r for r in (self.reader, self.sub_reader) if r is not None]


class NVR:
    def __init__(self, config: VigilConfig, *, node: str | None = None) -> None:
        self.config = config
        self.node = node or socket.gethostname()
        self.root = config.storage.path
        self.units: dict[str, CameraUnit] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.db: Database | None = None
        self.index: Index | None = None
        self.retention: Retention | None = None
        self.keys: KeyStore | None = None
        self.notifier: Notifier | None = None
        self.live = LiveRegistry()
        self.extra_setup: list[Callable[[Index], None]] = []
        self._lock_fd: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> Index:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"storage.path {self.root}: cannot create: {exc.strerror}") from None
        self._take_lock()
        try:
            # A schema upgrade runs in a child process: Alembic stays out of this one.
            self.db = Database(self.config.database_url(), isolated=True)
        except Exception as exc:
            raise StartupError(
                f"database {self._db_display()}: cannot open or migrate: {exc}"
            ) from None
        self.index = Index(self.db, self.root)
        try:
            self.keys = KeyStore(self.config.key_dir())
            install_chain(self.index, self.keys)
        except EvidenceError as exc:
            raise StartupError(f"evidence key in {self.config.key_dir()}: {exc}") from None
        for setup in self.extra_setup:
            setup(self.index)
        self.retention = Retention(self.config, self.index)
        return self.index

    def _take_lock(self) -> None:
        """One recorder per storage root: two would interleave deletions and recoveries."""
        path = self.root / ".vigil.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StartupError(
                f"storage.path {self.root}: another Vigil recorder is already using it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _db_display(self) -> str:
        url = self.config.database_url()
        return url.split("@")[-1] if "@" in url else url

    def reconcile(self) -> None:
        """Make the index and the files agree after whatever happened while we were down."""
        assert self.index is not None and self.retention is not None
        self.retention.finish_pending()
        recovered = recover_storage(self.root, self.index)
        if recovered:
            log.warning("recovered %d interrupted segment(s) after a crash", len(recovered))
        known = self.index.known_paths()
        for path in sorted(self.root.rglob("*.mp4")):
            rel = path.relative_to(self.root).as_posix()
            if rel in known or len(path.relative_to(self.root).parts) < 2:
                continue
            camera = path.relative_to(self.root).parts[0]
            try:
                info = describe_segment(path, camera)
            except (OSError, ValueError) as exc:
                log.error("unindexed file %s is not a usable segment: %s", rel, exc)
                continue
            log.warning("indexing segment found on disk without an index row: %s", rel)
            self.index.segment_closed(info)
        missing = [rel for rel in known if not (self.root / rel).exists()]
        for rel in missing[:20]:
            log.error("indexed segment is missing on disk: %s (vigil verify names all)", rel)
        if len(missing) > 20:
            log.error("... and %d more missing segments", len(missing) - 20)

    def _last_end(self) -> dict[str, int]:
        assert self.db is not None
        q = (
            select(Camera.name, func.max(Segment.end_us))
            .join(Segment, Segment.camera_id == Camera.id)
            .group_by(Camera.name)
        )
        with self.db.session() as s:
            return {n: int(e) for n, e in s.execute(q).all() if e is not None}

    def start(self) -> None:
        index = self.index or self.open()
        self.reconcile()
        last_end = self._last_end()
        self.notifier = build_notifier(
            self.config.events, index, [c.name for c in self.config.cameras if c.enabled]
        )
        self.notifier.start()
        for cam in self.config.cameras:
            if not cam.enabled:
                index.write_status(
                    cam.name, state="disabled", recording="idle", detail="", node=self.node
                )
                continue
            recorder: Recorder | None = None
            sinks: list[PacketSink] = []
            if cam.recording.enabled:
                recorder = Recorder(
                    cam.name,
                    self.root,
                    index,
                    self.config.recording,
                    record_audio=cam.recording.audio,
                )
                sinks = [RestartGapSink(index, cam.name, last_end.get(cam.name)), recorder]
            unit = CameraUnit(cam, None, recorder)  # type: ignore[arg-type]
            analytics_on_sub = False
            if cam.analytics.enabled:
                unit.analytics, unit.analytics_error = self._analytics_for(cam)
                unit.settings_version = self._analytics_settings(cam)[1]
                analytics_on_sub = cam.analytics.stream != "main" and cam.sub is not None
                if unit.analytics is not None and not analytics_on_sub:
                    sinks.append(unit.analytics)
            unit.reader = CameraReader(
                cam.name,
                cam.main,
                sinks,
                credentials=cam.credentials,
                config=self.config.ingest,
                audio=cam.recording.audio,
            )
            self.live.attach(unit.reader)
            if cam.sub is not None:
                # The substream serves the live grid and, usually, analytics: one
                # connection for both, none per viewer.
                unit.sub_reader = CameraReader(
                    cam.name,
                    cam.sub,
                    [unit.analytics] if unit.analytics is not None and analytics_on_sub else [],
                    credentials=cam.credentials,
                    config=self.config.ingest,
                    stream="sub",
                    audio=False,
                )
                self.live.attach(unit.sub_reader)
            self.units[cam.name] = unit
        for unit in self.units.values():
            for reader in unit.readers():
                reader.start()
        self._spawn("retention", self._retention_loop)
        self._spawn("status", self._status_loop)
        log.info(
            "recording %d camera(s) into %s", len(self.units), self.root, extra={"node": self.node}
        )

    def _analytics_settings(self, cam: CameraConfig) -> tuple[CameraAnalytics, int]:
        """The camera's analytics config with the zones, lines and masks edited through the
        API (table ``camera_settings``) laid over the YAML ones, and that edit's version."""
        assert self.index is not None
        with self.index.db.session() as s:
            row = s.get(CameraSettings, cam.name)
            if row is None:
                return cam.analytics, 0
            doc = {
                **cam.analytics.model_dump(mode="json"),
                **{k: v for k, v in (row.settings or {}).items() if k in _EDITABLE},
            }
            return CameraAnalytics.model_validate(doc), row.version

    def apply_settings(self) -> None:
        """Rebuild the pipeline of every camera whose settings were edited since."""
        if all(unit.analytics is None for unit in self.units.values()):
            return  # called every status interval: do not import analytics (numpy) for nothing
        from vigil.analytics.build import DetectorError, build_pipeline

        for name, unit in self.units.items():
            if unit.analytics is None:
                continue
            try:
                analytics, version = self._analytics_settings(unit.config)
                if version == unit.settings_version:
                    continue
                assert self.notifier is not None
                pipeline = build_pipeline(
                    name, analytics, self.notifier.on_event, self.notifier.on_activity
                )
            except (DetectorError, ValueError, OSError) as exc:
                log.error("%s: edited analytics settings not applied: %s", name, exc)
                continue
            unit.settings_version = version
            unit.analytics.replace_pipeline(pipeline)
            log.info("%s: analytics settings version %d applied", name, version)

    def _analytics_for(self, cam: CameraConfig) -> tuple[AnalyticsSink | None, str | None]:
        """A camera's analytics, or the reason it cannot run (recording goes on anyway).
        Imported here: OpenCV and ONNX Runtime cost ~45 MB that a recorder without
        analytics should not pay."""
        from vigil.analytics.build import DetectorError, build_pipeline
        from vigil.analytics.sink import AnalyticsSink

        assert self.notifier is not None
        try:
            analytics, _version = self._analytics_settings(cam)
            pipeline = build_pipeline(
                cam.name, analytics, self.notifier.on_event, self.notifier.on_activity
            )
        except (DetectorError, ValueError, OSError) as exc:
            message = f"analytics disabled: {exc}"
            log.error("%s: %s", cam.name, message)
            return None, message
        return AnalyticsSink(
            cam.name, pipeline, fps=cam.analytics.fps, width=cam.analytics.width
        ), None

    def stop(self) -> None:
        self._stop.set()
        for unit in self.units.values():
            for reader in unit.readers():
                reader.request_stop()  # all at once: their connections end together
        for unit in self.units.values():
            for reader in unit.readers():
                if not reader.stop(timeout=5.0):
                    log.warning("camera %s reader did not stop in time", unit.config.name)
        for unit in self.units.values():
            if unit.recorder is not None:
                unit.recorder.close()
            if unit.analytics is not None:
                unit.analytics.close()
        if self.notifier is not None:
            self.notifier.stop()
        self.live.close()
        for t in self._threads:
            t.join(timeout=5.0)
        loop = ReadLoop.existing()
        if loop is not None and loop.wakeups:
            log.info(
                "shared read thread: %d wake-ups, longest step %.0f ms",
                loop.wakeups,
                loop.slowest_step * 1000,
            )
        self.write_status()
        if self.db is not None:
            self.db.close()
        self._release_lock()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def request_stop(self) -> None:
        self._stop.set()

    # -- loops ---------------------------------------------------------------------------------
    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _retention_loop(self) -> None:
        assert self.retention is not None
        next_optimize = 0.0
        while not self._stop.is_set():
            try:
                self.retention.run_once()
                if self.notifier is not None:
                    self.notifier.store.purge()
                if self.db is not None and time.monotonic() >= next_optimize:
                    self.db.optimize()
                    next_optimize = time.monotonic() + OPTIMIZE_INTERVAL
            except Exception:
                log.exception("retention pass failed (will retry)")
            self._stop.wait(self.config.storage.retention_interval)

    def _status_loop(self) -> None:
        while not self._stop.wait(STATUS_INTERVAL):
            try:
                self.write_status()
                self.apply_settings()
            except Exception:
                log.exception("could not write camera status or apply settings")

    def write_status(self) -> None:
        if self.index is None:
            return
        rows: dict[str, dict[str, object]] = {}
        for name, unit in self.units.items():
            h = unit.reader.health()
            state: str = h.state
            recording = "off"
            detail = h.last_error or ""
            if unit.recorder is not None:
                rs = unit.recorder.status()
                recording = rs.state
                if rs.state in ("paused", "failed"):
                    detail = rs.reason
            if unit.sub_reader is not None:
                sub = unit.sub_reader.health()
                if sub.state != "online" and not detail:
                    detail = f"substream {sub.state}: {sub.last_error or 'no packets'}"
            if unit.analytics_error and not detail:
                detail = unit.analytics_error
            if self._stop.is_set():
                state = "stopped"
            online = state == "online"
            if self.notifier is not None and online != unit.online:
                unit.online = online
                self.notifier.on_camera_state(name, online)
            rows[name] = {
                "state": state,
                "recording": recording,
                "detail": detail,
                "fps": h.fps,
                "bitrate": h.bitrate_bps,
                "last_packet_us": h.last_packet_wall_us,
                "reconnects": h.reconnects,
                "codec": h.codec or "",
                "width": h.width,
                "height": h.height,
                "since_us": h.since_wall_us or None,
                "node": self.node,
            }
        if rows:
            self.index.write_statuses(rows)
