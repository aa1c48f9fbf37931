"""The index schema. Times are integers of microseconds since the Unix epoch (UTC), which
sort, compare and survive SQLite and PostgreSQL alike without timezone surprises.

The index describes files; it never holds media. Every table change goes through an Alembic
migration in ``vigil/index/migrations`` (the models and the migrations are checked against
each other by a test).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Camera(Base):
    __tablename__ = "cameras"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_us: Mapped[int] = mapped_column(BigInteger)


class Segment(Base):
    """A complete, closed segment file. Inserted only after the file is fsynced and renamed."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    path: Mapped[str] = mapped_column(String(512), unique=True)  # relative to storage root
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    duration_us: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    packets: Mapped[int] = mapped_column(Integer)
    video_codec: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    audio_codec: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    recovered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_us: Mapped[int] = mapped_column(BigInteger)
    # Hash chain (evidence): position and link, filled when the segment is chained.
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_segments_camera_start", "camera_id", "start_us"),
        Index("ix_segments_camera_end", "camera_id", "end_us"),
    )


class Gap(Base):
    """An explicit stretch of time with no footage and why (offline, disk full, ...)."""

    __tablename__ = "gaps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_gaps_camera_start", "camera_id", "start_us"),)


class Hold(Base):
    """A time range retention must not delete (event, evidence export, legal hold)."""

    __tablename__ = "holds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))  # event, export, legal
    reference: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_us: Mapped[int] = mapped_column(BigInteger)
    expires_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_holds_camera_range", "camera_id", "start_us", "end_us"),)


class Garbage(Base):
    """Files being deleted. A row is moved here before unlink, so a crash mid-delete leaves a
    note to finish the job instead of an index row pointing at nothing."""

    __tablename__ = "garbage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(512), unique=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    reason: Mapped[str] = mapped_column(String(32))
    created_us: Mapped[int] = mapped_column(BigInteger)


class CameraStatus(Base):
    """Latest health of each camera, written by the running recorder every few seconds so
    that `vigil status` (another process, maybe another machine) can read it."""

    __tablename__ = "camera_status"
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    recording: Mapped[str] = mapped_column(String(16), default="idle")
    detail: Mapped[str] = mapped_column(Text, default="")
    fps: Mapped[float] = mapped_column(Float, default=0.0)
    bitrate: Mapped[float] = mapped_column(Float, default=0.0)
    last_packet_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    codec: Mapped[str] = mapped_column(String(32), default="")
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    since_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    node: Mapped[str] = mapped_column(String(128), default="")


class Meta(Base):
    """Key/value facts about this index (storage identity, schema notes)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# Evidence tables live in their own module but must be part of Base.metadata wherever the
# models are imported (migrations, the migration check).
from vigil.index import auth_models as _auth_models  # noqa: E402, F401
from vigil.index import events_models as _events_models  # noqa: E402, F401
from vigil.index import evidence_models as _evidence_models  # noqa: E402, F401
