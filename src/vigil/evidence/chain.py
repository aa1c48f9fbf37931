"""The per-camera hash chain that makes the recorded store tamper-evident.

Every closed segment gets a chain position ``seq`` (1, 2, 3... per camera, in insertion
order) and a link::

    chain_hash = SHA-256( canonical("vigil-chain-link-v1", camera, seq, prev_chain_hash,
                                    segment_sha256, start_us, end_us, bytes, relative_path) )

with ``prev_chain_hash`` the previous link of the same camera (64 zeros for seq 1). Editing a
file changes its SHA-256; editing, removing, inserting or moving a row breaks a link. Links
alone need no key, so someone rewriting the *whole tail* could recompute them; the signed
chain head closes that door: each insert also rewrites the camera's ``chain_heads`` row
(seq, chain_hash) signed with the instance key, in the same transaction as the segment row,
so signing costs one Ed25519 signature (~50 µs) per segment and the head never lags.

Retention does not break the chain: deleting a chained segment writes a signed tombstone
holding every field of the link, so verification recomputes straight across the hole and can
tell "deleted by retention" (signed, with a reason) from "gone" (no tombstone).

Install with :func:`install_chain` when the index is opened, before recording starts.
"""

from __future__ import annotations

import base64
import logging
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.evidence import canonical
from vigil.evidence.keys import KeyStore, KeyStoreError
from vigil.index.evidence_models import ChainHead, ChainTombstone
from vigil.index.models import Camera, Garbage, Segment
from vigil.index.repository import Index, now_us

log = logging.getLogger(__name__)

GENESIS = "0" * 64
LINK_TAG = "vigil-chain-link-v1"
HEAD_TAG = "vigil-chain-head-v1"
TOMBSTONE_TAG = "vigil-chain-tombstone-v1"


def link_hash(
    camera: str,
    seq: int,
    prev_hash: str,
    sha256: str,
    start_us: int,
    end_us: int,
    size: int,
    path: str,
) -> str:
    """The chain link of one segment (see module docstring)."""
    return canonical.digest(LINK_TAG, camera, seq, prev_hash, sha256, start_us, end_us, size, path)


def head_message(camera: str, seq: int, chain_hash: str, signed_us: int) -> bytes:
    """What a chain head signature covers."""
    return canonical.encode(HEAD_TAG, camera, seq, chain_hash, signed_us)


def tombstone_message(
    camera: str, seq: int, path: str, sha256: str, chain_hash: str, reason: str, deleted_us: int
) -> bytes:
    """What a tombstone signature covers: which link was removed, why and when."""
    return canonical.encode(
        TOMBSTONE_TAG, camera, seq, path, sha256, chain_hash, reason, deleted_us
    )


def b64(sig: bytes) -> str:
    return base64.b64encode(sig).decode("ascii")


class HashChain:
    """The index hooks that extend the chain on insert and leave tombstones on delete."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def install(self, index: Index) -> None:
        """Register with ``index`` (idempotent)."""
        if self.on_segment not in index.segment_hooks:
            index.segment_hooks.append(self.on_segment)
        if self.on_delete not in index.delete_hooks:
            index.delete_hooks.append(self.on_delete)

    # -- hooks (run inside the index's transaction) ----------------------------------------
    def on_segment(self, s: Session, row: Segment) -> None:
        """Chain ``row`` after the camera's current head and re-sign the head."""
        if row.chain_seq is not None:
            return
        camera = self._camera(s, row.camera_id)
        # FOR UPDATE serialises concurrent inserts of one camera on PostgreSQL; on SQLite
        # the segment INSERT before this hook already holds the database write lock.
        head = s.get(ChainHead, row.camera_id, with_for_update=True)
        if head is not None:
            seq, prev = head.seq + 1, head.chain_hash
        else:
            seq, prev = self._resume_point(s, row)
        row.chain_seq = seq
        row.chain_hash = link_hash(
            camera, seq, prev, row.sha256, row.start_us, row.end_us, row.bytes, row.path
        )
        signed = now_us()
        key_id, sig = self._sign(head_message(camera, seq, row.chain_hash, signed), camera)
        if head is None:
            s.add(
                ChainHead(
                    camera_id=row.camera_id,
                    seq=seq,
                    chain_hash=row.chain_hash,
                    signed_us=signed,
                    key_id=key_id,
                    signature=sig,
                )
            )
        else:
            head.seq, head.chain_hash, head.signed_us = seq, row.chain_hash, signed
            head.key_id, head.signature = key_id, sig

    def on_delete(self, s: Session, segments: list[Segment]) -> None:
        """Leave a signed tombstone for each chained segment being deleted."""
        for seg in segments:
            if seg.chain_seq is None or seg.chain_hash is None:
                log.warning("deleting an unchained segment", extra={"path": seg.path})
                continue
            camera = self._camera(s, seg.camera_id)
            # begin_delete adds (and flushes) a garbage row carrying the reason first.
            reason = s.scalar(select(Garbage.reason).where(Garbage.path == seg.path)) or "deleted"
            deleted = now_us()
            key_id, sig = self._sign(
                tombstone_message(
                    camera, seg.chain_seq, seg.path, seg.sha256, seg.chain_hash, reason, deleted
                ),
                camera,
            )
            s.add(
                ChainTombstone(
                    camera_id=seg.camera_id,
                    seq=seg.chain_seq,
                    path=seg.path,
                    sha256=seg.sha256,
                    start_us=seg.start_us,
                    end_us=seg.end_us,
                    bytes=seg.bytes,
                    chain_hash=seg.chain_hash,
                    reason=reason,
                    deleted_us=deleted,
                    key_id=key_id,
                    signature=sig,
                )
            )

    # -- adoption ------------------------------------------------------------------------------
    def adopt_unchained(self, index: Index, camera: str | None = None) -> int:
        """Chain segments indexed before the chain was enabled (oldest first); returns how
        many. An explicit operator action, never automatic: adopting also legitimises any
        row that was slipped into the index, which is exactly what verification reports as
        "inserted". Run it once, after verifying the files by other means."""
        q = select(Segment).where(Segment.chain_seq.is_(None))
        if camera is not None:
            q = q.where(Segment.camera_id == index.camera_id(camera))
        n = 0
        with index.db.session() as s:
            for row in s.scalars(q.order_by(Segment.camera_id, Segment.start_us, Segment.id)):
                self.on_segment(s, row)
                s.flush()
                n += 1
            s.commit()
        return n

    # -- internals -----------------------------------------------------------------------------
    def _sign(self, message: bytes, camera: str) -> tuple[str, str]:
        """(key id, base64 signature). If the key cannot sign (passphrase gone, key file
        deleted), recording must not stop: the link is still written and the signature left
        empty, which verification reports as a signature failure for that camera."""
        try:
            key, sig = self.keys.sign(message)
        except KeyStoreError as e:
            log.error(
                "evidence signing failed; chain record left unsigned: %s",
                e,
                extra={"camera": camera},
            )
            return "", ""
        return key.key_id, b64(sig)

    def _camera(self, s: Session, camera_id: int) -> str:
        with self._lock:
            name = self._names.get(camera_id)
        if name is None:
            name = s.scalar(select(Camera.name).where(Camera.id == camera_id))
            if name is None:
                raise LookupError(f"camera id {camera_id} not found")
            with self._lock:
                self._names[camera_id] = name
        return name

    @staticmethod
    def _resume_point(s: Session, row: Segment) -> tuple[int, str]:
        """No head yet: start at 1, unless chained records exist (a lost head row), in
        which case continue after the newest so nothing is silently re-numbered."""
        best: tuple[int, str] | None = None
        seg = s.execute(
            select(Segment.chain_seq, Segment.chain_hash)
            .where(Segment.camera_id == row.camera_id, Segment.chain_seq.is_not(None))
            .order_by(Segment.chain_seq.desc())
            .limit(1)
        ).first()
        if seg is not None and seg[0] is not None and seg[1] is not None:
            best = (int(seg[0]), str(seg[1]))
        tomb = s.execute(
            select(ChainTombstone.seq, ChainTombstone.chain_hash)
            .where(ChainTombstone.camera_id == row.camera_id)
            .order_by(ChainTombstone.seq.desc())
            .limit(1)
        ).first()
        if tomb is not None and (best is None or tomb[0] > best[0]):
            best = (int(tomb[0]), str(tomb[1]))
        if best is None:
            return 1, GENESIS
        log.warning("chain head missing; continuing after newest record", extra={"seq": best[0]})
        return best[0] + 1, best[1]


def install_chain(index: Index, keys: KeyStore) -> HashChain:
    """Create the chain hooks for ``index`` and register them; returns the chain. Unlocks
    the key first, so a wrong or missing passphrase stops start-up with a ``KeyStoreError``
    rather than leaving every segment unsigned."""
    keys.unlock()
    chain = HashChain(keys)
    chain.install(index)
    return chain
