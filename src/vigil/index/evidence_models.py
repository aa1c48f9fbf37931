"""Index tables of the evidence subsystem (see ``vigil.evidence``): the signed head of each
camera's hash chain, signed tombstones of chained segments that retention deleted, and the
log of evidence exports.

The chain links themselves live on ``segments`` (``chain_seq``, ``chain_hash``); these tables
hold what must outlive a segment row or be signed. Imported at the bottom of
``vigil.index.models`` so that ``Base.metadata`` (and the migration check) always sees them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.index.models import Base


class ChainHead(Base):
    """The newest link of a camera's chain, signed. Rewritten in the same transaction as
    every chained insert, so the signed head never lags the rows; a head that does not match
    the newest record reveals truncation or appended rows."""

    __tablename__ = "chain_heads"
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
    signed_us: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the raw public key
    signature: Mapped[str] = mapped_column(String(128))  # base64 Ed25519 signature


class ChainTombstone(Base):
    """A chained segment removed on purpose (retention), with every field of its link so the
    chain can still be recomputed across the hole, and a signature saying who removed it."""

    __tablename__ = "chain_tombstones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    deleted_us: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_chain_tombstones_camera_seq", "camera_id", "seq", unique=True),)


class EvidenceExport(Base):
    """Audit log of evidence packages: who exported what, when and why."""

    __tablename__ = "evidence_exports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # export id (UUID)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[str] = mapped_column(String(128))
    exported_by: Mapped[str] = mapped_column(String(128))
    created_us: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)  # package directory as written
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    hold_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_evidence_exports_camera_start", "camera_id", "start_us"),)
