"""The per-camera hash chain over real fMP4 segments, and verify_storage naming tampering."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from vigil.evidence.chain import GENESIS, HashChain, install_chain, link_hash
from vigil.evidence.keys import ENV_PASSPHRASE, KeyStore, KeyStoreError
from vigil.evidence.report import EvidenceError, Report
from vigil.evidence.verify import verify_storage
from vigil.index.evidence_models import ChainHead, ChainTombstone
from vigil.index.models import Segment
from vigil.index.repository import Index

SEG_FRAMES = 10  # one-second segments at the shared fixtures' 10 fps


@dataclass
class Store:
    root: Path
    index: Index
    keys: KeyStore
    chain: HashChain
    make: Any  # the shared ``make_footage`` factory

    def add(self, first_frame: int, camera: str = "cam1") -> str:
        """Index one more real segment (frames first_frame..+9); returns its relative path."""
        fo = self.make([(first_frame, SEG_FRAMES)], camera=camera)
        return self.index.relpath(fo.segments[0].path)

    def rows(self, camera: str = "cam1") -> list[Segment]:
        return [s for _, s in self.index.segments(camera)]

    def verify(self, camera: str | None = None) -> Report:
        # Strays are re-checked once settle_s old; keep the tests' new files quick.
        return verify_storage(self.index, camera, self.keys, settle_s=0.2)


@pytest.fixture
def store(
    tmp_path: Path, evidence_index: Any, make_footage: Any, monkeypatch: pytest.MonkeyPatch
) -> Store:
    """Six chained one-second segments of cam1 (real fMP4 from the shared fixtures)."""
    monkeypatch.delenv(ENV_PASSPHRASE, raising=False)
    index = evidence_index.index
    keys = KeyStore(tmp_path / "keys")
    st = Store(evidence_index.root, index, keys, install_chain(index, keys), make_footage)
    make_footage([(i * SEG_FRAMES, SEG_FRAMES) for i in range(6)])
    return st


def _copy_of(store: Store, seq: int) -> Path:
    return store.index.abspath(store.rows()[seq - 1].path)


def _kinds(rep: Report) -> set[str]:
    return {p.kind for p in rep.problems}


def test_chain_links_recompute_and_head_is_signed(store: Store) -> None:
    rows = store.rows()
    assert [r.chain_seq for r in rows] == [1, 2, 3, 4, 5, 6]
    prev = GENESIS
    for r in rows:
        assert r.chain_hash == link_hash(
            "cam1", r.chain_seq or 0, prev, r.sha256, r.start_us, r.end_us, r.bytes, r.path
        )
        prev = r.chain_hash
    with store.index.db.session() as s:
        head = s.get(ChainHead, store.index.camera_id("cam1"))
        assert head is not None and head.seq == 6 and head.chain_hash == prev
        assert head.key_id == store.keys.active.key_id
    rep = store.verify()
    assert rep.ok, rep.summary()
    assert rep.checked["files"] == 6 and rep.checked["bytes_hashed"] == sum(r.bytes for r in rows)


def test_deleted_file_is_missing(store: Store) -> None:
    victim = store.rows()[2]
    store.index.abspath(victim.path).unlink()
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.camera, p.path, p.seq) == ("missing", "cam1", victim.path, 3)


@pytest.mark.parametrize("where", [0, 100, -1])
def test_modified_byte_is_named(store: Store, where: int) -> None:
    victim = store.rows()[1]
    f = store.index.abspath(victim.path)
    data = bytearray(f.read_bytes())
    data[where] ^= 0x01
    f.write_bytes(bytes(data))
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.path, p.seq) == ("modified", victim.path, 2)
    quick = verify_storage(store.index, "cam1", store.keys, rehash=False)
    assert quick.ok  # same size: only a full rehash catches a flipped byte
    assert "not hashed" in quick.summary()


def test_inserted_file_is_named(store: Store) -> None:
    day = _copy_of(store, 1).parent
    extra = day / "1700000099000000-7.mp4"
    shutil.copyfile(_copy_of(store, 1), extra)
    (day / "x.mp4.part").write_bytes(b"in progress")  # a segment being written is fine
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.camera, p.path) == ("inserted", "cam1", store.index.relpath(extra))


def test_inserted_row_without_link(store: Store) -> None:
    store.index.segment_hooks.clear()  # an attacker writing to the database directly
    rel = store.add(500)
    rep = store.verify()
    (prob,) = rep.problems
    assert (prob.kind, prob.path, prob.seq) == ("inserted", rel, None)


def test_inserted_row_with_forged_link_after_head(store: Store) -> None:
    """Links need no key: a well-formed link appended after the signed head is still caught."""
    rows = store.rows()
    store.index.segment_hooks.clear()
    rel = store.add(600)
    with store.index.db.session() as s:
        row = s.scalars(select(Segment).where(Segment.path == rel)).one()
        row.chain_seq = 7
        row.chain_hash = link_hash(
            "cam1",
            7,
            rows[-1].chain_hash or "",
            row.sha256,
            row.start_us,
            row.end_us,
            row.bytes,
            row.path,
        )
        s.commit()
    rep = store.verify()
    (prob,) = rep.problems
    assert (prob.kind, prob.path, prob.seq) == ("inserted", rel, 7)


@pytest.mark.parametrize("with_hash", [True, False], ids=["seq+hash", "seq-only"])
def test_swapped_rows_are_reordered(store: Store, with_hash: bool) -> None:
    rows = store.rows()
    a, b = rows[1], rows[3]
    for x, y in ((a, b), (b, a)):
        values: dict[str, object] = {"chain_seq": y.chain_seq}
        if with_hash:
            values["chain_hash"] = y.chain_hash
        with store.index.db.session() as s:
            s.execute(update(Segment).where(Segment.id == x.id).values(**values))
            s.commit()
    rep = store.verify()
    got = {(p.kind, p.path, p.seq) for p in rep.problems}
    assert got == {("reordered", a.path, 4), ("reordered", b.path, 2)}, rep.summary()


def test_adjacent_swap_of_row_contents_is_reordered(store: Store) -> None:
    rows = store.rows()
    a, b = rows[2], rows[3]
    cols = ("path", "start_us", "end_us", "bytes", "sha256")
    with store.index.db.session() as s:
        s.execute(update(Segment).where(Segment.id == a.id).values(path="tmp-swap"))
        s.execute(
            update(Segment).where(Segment.id == b.id).values(**{c: getattr(a, c) for c in cols})
        )
        s.execute(
            update(Segment).where(Segment.id == a.id).values(**{c: getattr(b, c) for c in cols})
        )
        s.commit()  # fmt: skip
    rep = store.verify()
    got = {(p.kind, p.path, p.seq) for p in rep.problems}
    assert got == {("reordered", b.path, 3), ("reordered", a.path, 4)}, rep.summary()


def test_swapped_files_are_reordered(store: Store) -> None:
    rows = store.rows()
    fa, fb = store.index.abspath(rows[0].path), store.index.abspath(rows[4].path)
    tmp = fa.with_name("swap.tmp")
    os.rename(fa, tmp)
    os.rename(fb, fa)
    os.rename(tmp, fb)
    rep = store.verify()
    got = {(p.kind, p.path, p.seq) for p in rep.problems}
    assert got == {("reordered", rows[0].path, 1), ("reordered", rows[4].path, 5)}


def test_edited_row_is_modified(store: Store) -> None:
    victim = store.rows()[4]
    with store.index.db.session() as s:
        s.execute(
            update(Segment)
            .where(Segment.id == victim.id)
            .values(start_us=victim.start_us + 30_000_000)
        )
        s.commit()  # fmt: skip
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.path, p.seq) == ("modified", victim.path, 5)


def test_file_and_row_edited_consistently_is_still_caught(store: Store) -> None:
    """Rewriting a file *and* its recorded hash breaks the link."""
    victim = store.rows()[1]
    f = store.index.abspath(victim.path)
    data = bytearray(f.read_bytes())
    data[500] ^= 0xFF
    f.write_bytes(bytes(data))
    with store.index.db.session() as s:
        s.execute(
            update(Segment)
            .where(Segment.id == victim.id)
            .values(sha256=hashlib.sha256(data).hexdigest())
        )
        s.commit()  # fmt: skip
    rep = store.verify()
    assert [(p.kind, p.path) for p in rep.problems] == [("modified", victim.path)]


def test_rewritten_tail_is_caught_by_signed_head(store: Store) -> None:
    """Recomputing every link after an edit defeats the links, not the signed head."""
    rows = store.rows()
    victim = rows[4]
    f = store.index.abspath(victim.path)
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    prev = rows[3].chain_hash or ""
    with store.index.db.session() as s:
        for r in rows[4:]:
            sha = hashlib.sha256(data).hexdigest() if r.id == victim.id else r.sha256
            h = link_hash("cam1", r.chain_seq or 0, prev, sha, r.start_us, r.end_us, r.bytes,
                          r.path)  # fmt: skip
            s.execute(update(Segment).where(Segment.id == r.id).values(sha256=sha, chain_hash=h))
            prev = h
        s.commit()
    rep = store.verify()
    assert ("modified", rows[5].path, 6) in {(p.kind, p.path, p.seq) for p in rep.problems}
    assert not rep.ok


def test_row_and_file_removed_without_tombstone(store: Store) -> None:
    victim = store.rows()[2]
    store.index.abspath(victim.path).unlink()
    with store.index.db.session() as s:
        s.execute(delete(Segment).where(Segment.id == victim.id))
        s.commit()
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.seq) == ("missing", 3)


def test_truncated_tail_is_missing(store: Store) -> None:
    victim = store.rows()[-1]
    store.index.abspath(victim.path).unlink()
    with store.index.db.session() as s:
        s.execute(delete(Segment).where(Segment.id == victim.id))
        s.commit()
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.seq) == ("missing", 6)


def test_forged_head_signature(store: Store) -> None:
    with store.index.db.session() as s:
        head = s.get(ChainHead, store.index.camera_id("cam1"))
        assert head is not None
        head.signed_us += 1  # a replayed/edited head no longer matches its signature
        s.commit()
    rep = store.verify()
    assert [(p.kind, p.seq) for p in rep.problems] == [("signature", 6)]
    # without the key store, signatures are explicitly not claimed as checked
    unsigned = verify_storage(store.index, "cam1")
    assert unsigned.ok and any("signatures not checked" in n for n in unsigned.notes)


def _retention_delete(store: Store, n: int, reason: str = "max_age") -> list[Segment]:
    cands = store.index.deletion_candidates("cam1", limit=n)
    pending = store.index.begin_delete([c.id for c in cands], reason)
    for _, rel in pending:
        store.index.abspath(rel).unlink()
    store.index.finish_delete([gid for gid, _ in pending])
    return cands


def test_retention_delete_leaves_signed_tombstones(store: Store) -> None:
    gone = _retention_delete(store, 2)
    with store.index.db.session() as s:
        tombs = s.scalars(select(ChainTombstone).order_by(ChainTombstone.seq)).all()
    assert [(t.seq, t.path, t.reason) for t in tombs] == [
        (1, gone[0].path, "max_age"),
        (2, gone[1].path, "max_age"),
    ]
    assert [t.chain_hash for t in tombs] == [g.chain_hash for g in gone]
    store.add(100)  # the chain continues across the deletion
    rep = store.verify()
    assert rep.ok, rep.summary()
    assert rep.checked["tombstones"] == 2 and rep.checked["segments"] == 5
    # a pending deletion (garbage row, file not yet unlinked) is not an intruder either
    cands = store.index.deletion_candidates("cam1", limit=1)
    store.index.begin_delete([c.id for c in cands], "max_bytes")
    assert store.verify().ok


def test_tampered_tombstone_is_caught(store: Store) -> None:
    _retention_delete(store, 1)
    with store.index.db.session() as s:
        s.execute(update(ChainTombstone).values(reason="operator"))
        s.commit()
    rep = store.verify()
    assert [(p.kind, p.seq) for p in rep.problems] == [("signature", 1)]


def test_deleted_file_reappearing_is_inserted(store: Store) -> None:
    backup = store.root.parent / "backup.mp4"
    shutil.copyfile(_copy_of(store, 1), backup)
    (gone,) = _retention_delete(store, 1)
    shutil.copyfile(backup, store.index.abspath(gone.path))
    rep = store.verify()
    (p,) = rep.problems
    assert (p.kind, p.path, p.seq) == ("inserted", gone.path, 1)


def test_rotation_keeps_chain_verifiable(store: Store) -> None:
    _retention_delete(store, 1)  # tombstone signed by the first key
    store.keys.rotate()
    store.add(200)  # head signed by the new key
    _retention_delete(store, 1)
    rep = store.verify()
    assert rep.ok, rep.summary()
    with store.index.db.session() as s:
        keys_used = set(s.scalars(select(ChainTombstone.key_id)))
    assert len(keys_used) == 2


def test_cameras_have_independent_chains(store: Store) -> None:
    for i in range(3):
        store.add(i * SEG_FRAMES, camera="cam2")
    assert [r.chain_seq for r in store.rows("cam2")] == [1, 2, 3]
    store.index.abspath(store.rows("cam2")[0].path).unlink()
    assert store.verify("cam1").ok
    rep = store.verify()
    assert [(p.kind, p.camera) for p in rep.problems] == [("missing", "cam2")]
    with pytest.raises(EvidenceError, match="unknown camera"):
        store.verify("nope")


def test_adopt_unchained_segments(store: Store) -> None:
    store.index.segment_hooks.clear()
    store.add(300)
    assert not store.verify().ok
    assert store.chain.adopt_unchained(store.index) == 1
    store.chain.install(store.index)
    store.add(310)
    assert [r.chain_seq for r in store.rows()] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert store.verify().ok


def test_signing_failure_never_stops_recording(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_data: bytes) -> None:
        raise KeyStoreError("key file deleted")

    monkeypatch.setattr(store.keys, "sign", broken)
    rel = store.add(700)  # indexed and linked all the same
    assert store.rows()[-1].path == rel and store.rows()[-1].chain_seq == 7
    rep = store.verify()
    assert [(p.kind, p.seq) for p in rep.problems] == [("signature", 7)]


def test_wrong_passphrase_stops_start_up(
    tmp_path: Path, evidence_index: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PASSPHRASE, "right")
    KeyStore(tmp_path / "k")
    monkeypatch.setenv(ENV_PASSPHRASE, "wrong")
    with pytest.raises(KeyStoreError, match="cannot decrypt"):
        install_chain(evidence_index.index, KeyStore(tmp_path / "k"))
    assert evidence_index.index.segment_hooks == []
