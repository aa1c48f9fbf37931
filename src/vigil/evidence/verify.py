"""Verification: of the recorded store (:func:`verify_storage`) and of an exported evidence
package (:func:`verify_package`).

Both name what failed rather than answer yes/no: an investigator needs to know *which*
segment or file changed, and an operator needs to tell a retention deletion (signed
tombstone, fine) from a file that vanished (problem).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import select

from vigil.evidence import package as pkg
from vigil.evidence.chain import GENESIS, head_message, link_hash, tombstone_message
from vigil.evidence.hashing import hash_files, sha256_file
from vigil.evidence.keys import (
    KeyStore,
    fingerprint_of,
    key_id_of,
    normalize_fingerprint,
    verify_raw,
)
from vigil.evidence.report import EvidenceError, Problem, Report
from vigil.index.evidence_models import ChainHead, ChainTombstone
from vigil.index.models import Garbage, Segment
from vigil.index.repository import Index

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = frozenset({".mp4", ".m4s", ".m4v", ".mov", ".mkv", ".ts"})
# Classifying broken links as "moved" is quadratic in their number; beyond this many the
# store is plainly wrecked and each is simply reported as modified.
_MAX_CLASSIFY = 64


# =============================================================================================
# Storage
# =============================================================================================
@dataclass(slots=True)
class _Rec:
    """A chain record: a live segment row or a tombstone."""

    source: Literal["row", "tombstone"]
    id: int
    seq: int | None
    path: str
    sha256: str
    start_us: int
    end_us: int
    bytes: int
    chain_hash: str | None
    reason: str = ""
    deleted_us: int = 0
    key_id: str = ""
    signature: str = ""


@dataclass(frozen=True, slots=True)
class _Head:
    seq: int
    chain_hash: str
    signed_us: int
    key_id: str
    signature: str


def verify_storage(
    index: Index,
    camera: str | None = None,
    keys: KeyStore | None = None,
    *,
    rehash: bool = True,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    settle_s: float = 2.0,
) -> Report:
    """Recompute file hashes and every camera's chain; report what does not hold.

    Problems, each naming camera, storage-relative path and chain position where known:

    - ``modified``: a file's SHA-256 differs from the recorded one, or a row's fields no
      longer match its chain link (row edited), or the chain was rewritten up to a signed
      head that no longer matches;
    - ``missing``: a chained file is gone, or a chain position has neither a row nor a
      tombstone (row and file removed), or the signed head names a position that is gone;
    - ``inserted``: a media file under a camera's directories that the index does not know,
      a row without a chain link, a record chained after the signed head, or a second
      record claiming an occupied position;
    - ``reordered``: a record whose link is intact but was made for another position, or a
      file holding the content recorded for another segment (files swapped);
    - ``signature``: a chain head or tombstone signature that does not verify with a
      trusted key of ``keys`` (only checked when ``keys`` is given; a note says otherwise).

    ``rehash=False`` checks presence and size only (fast, for frequent runs). ``progress``
    receives (bytes hashed so far, total bytes). Safe to run while recording: concurrent
    inserts and retention deletions are re-checked before being reported; a media file
    that is not in the index is reported only once it is ``settle_s`` old and still
    unknown (a new segment is indexed milliseconds after its rename), so a run that finds
    very recent strays takes up to ``settle_s`` longer.
    """
    t0 = time.monotonic()
    names = index.camera_names()
    if camera is not None and camera not in names:
        raise EvidenceError(f"unknown camera {camera!r}")
    cameras = [camera] if camera is not None else names
    rep = Report(subject=f"storage {index.root}" + (f" camera {camera}" if camera else ""))
    if keys is None:
        rep.notes.append("signatures not checked: no key store given")

    snapshot = {name: _load_camera(index, name) for name in names}
    for name in cameras:
        head, recs = snapshot[name]
        rep.count("cameras")
        rep.count("segments", sum(1 for r in recs if r.source == "row"))
        rep.count("tombstones", sum(1 for r in recs if r.source == "tombstone"))
        _check_chain(rep, name, recs, head, keys)

    _check_files(rep, index, cameras, snapshot, rehash, workers, progress)
    _check_strays(rep, index, cameras, snapshot, settle_s)
    rep.elapsed_s = time.monotonic() - t0
    return rep


def _load_camera(index: Index, camera: str) -> tuple[_Head | None, list[_Rec]]:
    """A consistent-enough snapshot of one camera: re-read until the signed head did not
    move while rows and tombstones were read (the recorder keeps inserting meanwhile).
    Rows are read before tombstones, so a segment deleted meanwhile shows up at least once
    (as both; the duplicate is folded in :func:`_check_chain`)."""
    cid = index.camera_id(camera)
    head: _Head | None = None
    recs: list[_Rec] = []
    for _ in range(5):
        with index.db.session() as s:
            h1 = _read_head(s.get(ChainHead, cid))
            recs = [
                _Rec(
                    "row",
                    r.id,
                    r.chain_seq,
                    r.path,
                    r.sha256,
                    r.start_us,
                    r.end_us,
                    r.bytes,
                    r.chain_hash,
                )
                for r in s.scalars(select(Segment).where(Segment.camera_id == cid))
            ]
            recs += [
                _Rec(
                    "tombstone",
                    t.id,
                    t.seq,
                    t.path,
                    t.sha256,
                    t.start_us,
                    t.end_us,
                    t.bytes,
                    t.chain_hash,
                    t.reason,
                    t.deleted_us,
                    t.key_id,
                    t.signature,
                )
                for t in s.scalars(select(ChainTombstone).where(ChainTombstone.camera_id == cid))
            ]
            head = _read_head(s.get(ChainHead, cid, populate_existing=True))
        if h1 == head:
            break
    return head, recs


def _read_head(h: ChainHead | None) -> _Head | None:
    if h is None:
        return None
    return _Head(h.seq, h.chain_hash, h.signed_us, h.key_id, h.signature)


def _link(camera: str, r: _Rec, seq: int, prev: str) -> str:
    return link_hash(camera, seq, prev, r.sha256, r.start_us, r.end_us, r.bytes, r.path)


def _check_chain(
    rep: Report, camera: str, recs: list[_Rec], head: _Head | None, keys: KeyStore | None
) -> None:
    by_seq: dict[int, list[_Rec]] = {}
    for r in recs:
        if r.seq is None or r.chain_hash is None:
            rep.add(
                Problem(
                    "inserted", "row has no chain link (indexed outside the chain)", camera, r.path
                )
            )
        elif r.seq < 1:
            rep.add(Problem("inserted", "invalid chain position", camera, r.path, r.seq))
        else:
            by_seq.setdefault(r.seq, []).append(r)
    for cl in by_seq.values():
        # Deleted while we were reading: the same link as row and as tombstone.
        tomb_links = {(t.chain_hash, t.path) for t in cl if t.source == "tombstone"}
        cl[:] = [
            r for r in cl if r.source == "tombstone" or (r.chain_hash, r.path) not in tomb_links
        ]

    top = max(by_seq, default=0)
    if head is None:
        limit = top
        if top:
            rep.add(
                Problem("signature", "camera has chained records but no signed chain head", camera)
            )
    else:
        limit = head.seq
        for seq in range(head.seq + 1, top + 1):
            for r in by_seq.get(seq, []):
                rep.add(
                    Problem(
                        "inserted",
                        f"record chained after the signed head (seq {head.seq})",
                        camera,
                        r.path,
                        seq,
                    )
                )

    chosen: dict[int, _Rec] = {}
    failing: list[_Rec] = []
    reported: set[int] = set()  # id() of records already explained
    prev: str | None = GENESIS
    for seq in range(1, limit + 1):
        cl = by_seq.get(seq, [])
        if not cl:
            what = (
                "the newest segments are gone (signed head is at this position)"
                if (head is not None and seq == head.seq)
                else "chain position has neither a segment nor a tombstone (row and file removed)"
            )
            rep.add(Problem("missing", what, camera, None, seq))
            prev = None
            continue
        good = [r for r in cl if prev is not None and _link(camera, r, seq, prev) == r.chain_hash]
        pick = good[0] if good else min(cl, key=lambda r: (r.source != "row", r.id))
        chosen[seq] = pick
        for r in cl:
            if r is not pick:
                rep.add(
                    Problem(
                        "inserted",
                        "another record already holds this chain position",
                        camera,
                        r.path,
                        seq,
                    )
                )
                reported.add(id(r))
        if prev is not None and not good:
            failing.append(pick)
        assert pick.chain_hash is not None
        prev = pick.chain_hash

    _classify(rep, camera, failing, chosen, reported)

    if head is not None:
        if keys is not None and not _sig_ok(
            keys,
            head.key_id,
            head_message(camera, head.seq, head.chain_hash, head.signed_us),
            head.signature,
        ):
            rep.add(
                Problem(
                    "signature",
                    "chain head signature does not verify with a trusted "
                    "instance key (head forged or replayed)",
                    camera,
                    None,
                    head.seq,
                )
            )
        at = chosen.get(head.seq)
        if at is not None and at.chain_hash != head.chain_hash and id(at) not in reported:
            rep.add(
                Problem(
                    "modified",
                    "the signed chain head covers a different link here: the chain was rewritten",
                    camera,
                    at.path,
                    head.seq,
                )
            )

    for r in recs:
        if r.source != "tombstone":
            continue
        rep.count("tombstone_signatures" if keys is not None else "tombstones_unsigned_check")
        if keys is not None and (
            r.seq is None
            or r.chain_hash is None
            or not _sig_ok(
                keys,
                r.key_id,
                tombstone_message(
                    camera, r.seq, r.path, r.sha256, r.chain_hash, r.reason, r.deleted_us
                ),
                r.signature,
            )
        ):
            rep.add(
                Problem(
                    "signature",
                    "tombstone signature does not verify: deletion not made by this instance",
                    camera,
                    r.path,
                    r.seq,
                )
            )


def _classify(
    rep: Report, camera: str, failing: list[_Rec], chosen: dict[int, _Rec], reported: set[int]
) -> None:
    """Explain each record whose link does not verify: moved (reordered), intact but its
    predecessor changed (explained by that predecessor), or edited (modified)."""
    if len(failing) > _MAX_CLASSIFY:
        for r in failing:
            rep.add(
                Problem("modified", "record does not match its chain link", camera, r.path, r.seq)
            )
        return
    positions = sorted({r.seq for r in failing if r.seq is not None})
    moved_hashes = [r.chain_hash for r in failing if r.chain_hash is not None]

    def prev_at(j: int) -> str | None:
        return GENESIS if j == 1 else (chosen[j - 1].chain_hash if j - 1 in chosen else None)

    victims: list[_Rec] = []
    failed_ids = {id(r) for r in failing}
    for r in failing:
        assert r.seq is not None
        if any(_link(camera, r, r.seq, p) == r.chain_hash for p in [GENESIS, *moved_hashes]):
            victims.append(r)  # intact; what precedes it changed
            continue
        origin = None
        for j in positions:
            if j == r.seq:
                continue
            # Either the record moved with its link (its own hash fits position j), or
            # contents were swapped under the links (position j's hash fits this content).
            targets = {r.chain_hash, chosen[j].chain_hash if j in chosen else None}
            cands = [prev_at(j), *moved_hashes]
            if any(p is not None and _link(camera, r, j, p) in targets for p in cands):
                origin = j
                break
        if origin is not None:
            rep.add(
                Problem(
                    "reordered",
                    f"record was chained at position {origin}, found at {r.seq}",
                    camera,
                    r.path,
                    r.seq,
                )
            )
        elif r.source == "tombstone":
            rep.add(
                Problem(
                    "modified",
                    "tombstone does not match its chain link (edited)",
                    camera,
                    r.path,
                    r.seq,
                )
            )
        else:
            rep.add(
                Problem(
                    "modified",
                    "segment row does not match its chain link (its hash, "
                    "times, size or path were edited)",
                    camera,
                    r.path,
                    r.seq,
                )
            )
        reported.add(id(r))
    for r in victims:
        assert r.seq is not None
        pred = chosen.get(r.seq - 1)
        if pred is not None and id(pred) not in failed_ids and id(pred) not in reported:
            rep.add(
                Problem(
                    "modified",
                    f"record is not the one seq {r.seq} was chained after "
                    "(replaced, links recomputed)",
                    camera,
                    pred.path,
                    pred.seq,
                )
            )
            reported.add(id(pred))


def _sig_ok(keys: KeyStore, key_id: str, message: bytes, signature_b64: str) -> bool:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return keys.verify(key_id, message, sig)


def _check_files(
    rep: Report,
    index: Index,
    cameras: list[str],
    snapshot: dict[str, tuple[_Head | None, list[_Rec]]],
    rehash: bool,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    todo: list[tuple[str, _Rec, Path]] = []
    for name in cameras:
        for r in snapshot[name][1]:
            if r.source != "row":
                continue
            try:
                todo.append((name, r, index.abspath(r.path)))
            except ValueError:
                rep.add(
                    Problem("modified", "row points outside the storage root", name, r.path, r.seq)
                )
    todo.sort(key=lambda t: t[1].path)  # directory order: friendlier to the disk
    by_sha = {name: {r.sha256: r for r in snapshot[name][1]} for name in cameras}
    missing: list[tuple[str, _Rec]] = []
    total = sum(r.bytes for _, r, _ in todo)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if rehash:
        results: Iterable[tuple[Path, Any]] = hash_files(
            [p for _, _, p in todo], workers=workers, progress=tick
        )
    else:
        results = ((p, _stat_size(p)) for _, _, p in todo)
    for (name, r, _), (_, res) in zip(todo, results, strict=True):
        rep.count("files")
        if isinstance(res, FileNotFoundError):
            missing.append((name, r))
            continue
        if isinstance(res, OSError):
            rep.add(Problem("missing", f"file unreadable: {res.strerror}", name, r.path, r.seq))
            continue
        if not rehash:
            if res != r.bytes:
                rep.add(
                    Problem(
                        "modified",
                        f"size {res} differs from recorded {r.bytes}",
                        name,
                        r.path,
                        r.seq,
                    )
                )
            continue
        digest, size = res
        rep.count("bytes_hashed", size)
        if digest == r.sha256:
            continue
        other = by_sha[name].get(digest)
        if other is not None and other is not r:
            rep.add(
                Problem(
                    "reordered",
                    f"file holds the content recorded for seq {other.seq} ({other.path})",
                    name,
                    r.path,
                    r.seq,
                )
            )
        else:
            rep.add(
                Problem(
                    "modified",
                    "SHA-256 differs from the recorded hash"
                    + (f" (size {size}, recorded {r.bytes})" if size != r.bytes else ""),
                    name,
                    r.path,
                    r.seq,
                )
            )
    if missing:
        # Retention may have deleted some while we hashed: only rows still present count.
        with index.db.session() as s:
            still = set(
                s.scalars(select(Segment.id).where(Segment.id.in_([r.id for _, r in missing])))
            )
        for name, r in missing:
            if r.id in still:
                rep.add(
                    Problem(
                        "missing",
                        "file is gone but no tombstone records its deletion",
                        name,
                        r.path,
                        r.seq,
                    )
                )
    if not rehash:
        rep.notes.append("file contents not hashed (presence and size only)")


def _stat_size(p: Path) -> int | OSError:
    try:
        return p.stat().st_size
    except OSError as e:
        return e


def _check_strays(
    rep: Report,
    index: Index,
    cameras: list[str],
    snapshot: dict[str, tuple[_Head | None, list[_Rec]]],
    settle_s: float,
) -> None:
    """Media files under the cameras' directories that no row describes."""
    owners: dict[str, set[str]] = {}  # storage-relative directory -> cameras with files there
    known: set[str] = set()
    tombstoned: dict[str, _Rec] = {}
    for name, (_, recs) in snapshot.items():
        for r in recs:
            if r.source == "row":
                known.add(r.path)
            else:
                tombstoned[r.path] = r
            for parent in PurePosixPath(r.path).parents:
                if str(parent) != ".":
                    owners.setdefault(str(parent), set()).add(name)
    with index.db.session() as s:
        known |= set(s.scalars(select(Garbage.path)))
    tops = {
        PurePosixPath(r.path).parts[0]
        for name in cameras
        for r in snapshot[name][1]
        if len(PurePosixPath(r.path).parts) > 1
    }
    candidates: list[tuple[str, str | None]] = []
    for top in sorted(tops):
        base = index.root / top
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fn in filenames:
                if fn.startswith(".") or os.path.splitext(fn)[1].lower() not in MEDIA_SUFFIXES:
                    continue
                rel = Path(dirpath, fn).relative_to(index.root).as_posix()
                if rel in known:
                    continue
                owner = _owner(rel, owners)
                if owner is None or owner in cameras:
                    candidates.append((rel, owner))
    if not candidates:
        return
    # A segment is renamed into place a moment before it is indexed. Let the newest
    # candidates settle (ctime, which unlike mtime cannot be set back by a user), then ask
    # the index again: only files still unknown after that are intruders.
    ctimes = {rel: _ctime(index.root / rel) for rel, _ in candidates}
    newest = max((c for c in ctimes.values() if c is not None), default=None)
    if newest is not None and settle_s > 0:
        wait = newest + settle_s - time.time()
        if wait > 0:
            time.sleep(min(wait, settle_s))
    with index.db.session() as s:
        late = set(
            s.scalars(select(Segment.path).where(Segment.path.in_([rel for rel, _ in candidates])))
        ) | set(s.scalars(select(Garbage.path)))
    for rel, owner in candidates:
        if rel in late or ctimes[rel] is None or _ctime(index.root / rel) is None:
            continue  # indexed meanwhile, or gone (deleted by retention meanwhile)
        t = tombstoned.get(rel)
        msg = (
            f"file was deleted by retention (tombstone, seq {t.seq}) but is present on disk"
            if t is not None
            else "media file on disk is not in the index or the chain"
        )
        rep.add(Problem("inserted", msg, owner, rel, t.seq if t is not None else None))


def _ctime(p: Path) -> float | None:
    try:
        return p.lstat().st_ctime
    except OSError:
        return None


def _owner(rel: str, owners: dict[str, set[str]]) -> str | None:
    for parent in PurePosixPath(rel).parents:
        cams = owners.get(str(parent))
        if cams is not None and len(cams) == 1:
            return next(iter(cams))
    return None


# =============================================================================================
# Packages
# =============================================================================================
def verify_package(path: Path | str, expected_fingerprint: str | None = None) -> Report:
    """Verify an evidence package with nothing but the package itself.

    Checks, naming what failed: the manifest parses and is a known format; every file name
    in it is a safe flat name (checked *before* any file other than the manifest and its
    signature is touched; a traversal attempt ends verification); the signature in
    ``manifest.sig`` verifies against the public key embedded in the manifest; that key's
    fingerprint equals ``expected_fingerprint`` when given (any formatting); every listed
    file exists, is a regular file (no symlinks) and has the listed size and SHA-256; and no
    unlisted file is present. ``Report.fingerprint`` is the signing key's fingerprint, for
    the recipient to compare out of band.
    """
    t0 = time.monotonic()
    root = Path(path)
    rep = Report(subject=f"evidence package {root}")
    try:
        _verify_package(root, rep, expected_fingerprint)
    finally:
        rep.elapsed_s = time.monotonic() - t0
    return rep


def _read_small(root: Path, name: str, limit: int) -> bytes | str:
    """Bytes of a fixed-name package file, or why not (no symlinks, size-limited)."""
    try:
        st = os.lstat(root / name)
    except FileNotFoundError:
        return "file is missing"
    except OSError as e:
        return f"cannot read: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > limit:
        return f"larger than {limit} bytes"
    try:
        fd = os.open(root / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, "rb") as f:
            return f.read(limit + 1)
    except OSError as e:
        return f"cannot read: {e.strerror}"


def _verify_package(root: Path, rep: Report, expected: str | None) -> None:
    if not root.is_dir():
        rep.add(Problem("missing_file", "package directory does not exist", path=str(root)))
        return
    manifest = _read_small(root, pkg.MANIFEST, pkg.MAX_MANIFEST_BYTES)
    sig = _read_small(root, pkg.SIGNATURE, 1024)
    if isinstance(manifest, str):
        rep.add(Problem("missing_file", manifest, path=pkg.MANIFEST))
    if isinstance(sig, str):
        rep.add(Problem("missing_file", sig, path=pkg.SIGNATURE))
    if isinstance(manifest, str):
        return

    try:
        doc = json.loads(manifest.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("top level is not an object")
    except (UnicodeDecodeError, ValueError) as e:
        rep.add(
            Problem(
                "signature",
                "manifest.json is not valid JSON, so it was altered or "
                f"damaged; its signature cannot be checked ({e})",
                path=pkg.MANIFEST,
            )
        )
        return

    # File names first: a crafted manifest must not steer any file access.
    files = doc.get("files")
    entries: list[dict[str, Any]] = []
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        rep.add(
            Problem("manifest", "'files' is missing or not a list of objects", path=pkg.MANIFEST)
        )
    else:
        entries = files
    names: list[str] = []
    unsafe = False
    for ent in entries:
        why = pkg.unsafe_name_reason(ent.get("name"))
        if why is not None:
            unsafe = True
            rep.add(Problem("unsafe_path", f"{why}; package rejected", path=repr(ent.get("name"))))
        else:
            names.append(ent["name"])
    clips = doc.get("clips")
    if isinstance(clips, list):
        for c in clips:
            f = c.get("file") if isinstance(c, dict) else None
            why = pkg.unsafe_name_reason(f)
            if why is not None:
                unsafe = True
                rep.add(Problem("unsafe_path", f"clip {why}; package rejected", path=repr(f)))
            elif f not in names:
                rep.add(Problem("manifest", "clip is not listed under 'files'", path=f))
    if len(set(names)) != len(names):
        unsafe = True
        rep.add(
            Problem(
                "unsafe_path", "a file name is listed twice; package rejected", path=pkg.MANIFEST
            )
        )
    if unsafe:
        return

    # Signature and key.
    raw = _public_key(doc)
    if raw is None:
        rep.add(
            Problem(
                "manifest", "no valid Ed25519 public key under 'signing_key'", path=pkg.MANIFEST
            )
        )
    else:
        rep.fingerprint = fingerprint_of(raw)
        listed = doc["signing_key"].get("fingerprint")
        if isinstance(listed, str) and normalize_fingerprint(listed) != key_id_of(raw):
            rep.add(
                Problem(
                    "manifest",
                    "stated fingerprint does not match the embedded key",
                    path=pkg.MANIFEST,
                )
            )
        if isinstance(sig, bytes):
            rep.count("signatures")
            if not verify_raw(raw, manifest, sig):
                rep.add(
                    Problem(
                        "signature",
                        "manifest.sig does not verify: manifest.json was "
                        "altered, or the signature was made with another key",
                        path=pkg.MANIFEST,
                    )
                )
        _check_head(doc, raw, rep)
        if expected is not None and normalize_fingerprint(expected) != key_id_of(raw):
            rep.add(
                Problem(
                    "fingerprint",
                    f"signed by key {rep.fingerprint}, expected {expected}",
                    path=pkg.MANIFEST,
                )
            )
    if doc.get("format") != pkg.FORMAT or doc.get("format_version") != pkg.FORMAT_VERSION:
        rep.add(
            Problem(
                "manifest",
                f"unknown format {doc.get('format')!r} version {doc.get('format_version')!r}",
                path=pkg.MANIFEST,
            )
        )

    _check_sources_consistent(doc, rep)

    # Directory contents.
    expected_names = set(names) | pkg.RESERVED
    try:
        present = sorted(os.listdir(root))
    except OSError as e:
        rep.add(Problem("missing_file", f"cannot list package: {e.strerror}", path=str(root)))
        return
    for extra in present:
        if extra not in expected_names:
            rep.add(Problem("extra_file", "file is not listed in the manifest", path=extra))
    for ent in entries:
        _check_listed(root, ent, rep)


def _check_head(doc: dict[str, Any], raw: bytes, rep: Report) -> None:
    """The chain head cited in the manifest, when signed by the same key as the package,
    must carry a valid signature (a head signed before a key rotation cannot be checked
    from the package alone; the store's key registry can)."""
    chain = doc.get("chain")
    head = chain.get("head_at_export") if isinstance(chain, dict) else None
    if not isinstance(head, dict):
        return
    try:
        same_key = normalize_fingerprint(str(head["key_fingerprint"])) == key_id_of(raw)
        msg = head_message(
            str(doc["camera"]), int(head["seq"]), str(head["chain_hash"]), int(head["signed_us"])
        )
        sig = base64.b64decode(str(head["signature"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        rep.add(Problem("manifest", "malformed chain head entry", path=pkg.MANIFEST))
        return
    if not same_key:
        rep.notes.append("chain head was signed by an earlier instance key; not checked here")
        return
    rep.count("signatures")
    if not verify_raw(raw, msg, sig):
        rep.add(
            Problem("manifest", "cited chain head signature does not verify", path=pkg.MANIFEST)
        )


def _check_sources_consistent(doc: dict[str, Any], rep: Report) -> None:
    """Recompute each source segment's chain link from the manifest's own fields: a
    manifest whose chain citations do not add up is reported even if it is signed."""
    camera = doc.get("camera")
    sources = doc.get("source_segments")
    if not isinstance(camera, str) or not isinstance(sources, list):
        rep.add(Problem("manifest", "'camera' or 'source_segments' missing", path=pkg.MANIFEST))
        return
    for src in sources:
        try:
            seq, prev, want = src["seq"], src["prev_chain_hash"], src["chain_hash"]
            if seq is None or prev is None:
                continue  # exported from an unchained segment: nothing to recompute
            got = link_hash(
                camera,
                int(seq),
                str(prev),
                str(src["sha256"]),
                int(src["start_us"]),
                int(src["end_us"]),
                int(src["bytes"]),
                str(src["path"]),
            )
        except (KeyError, TypeError, ValueError):
            rep.add(Problem("manifest", "malformed source segment entry", path=pkg.MANIFEST))
            continue
        rep.count("source_links")
        if got != want:
            rep.add(
                Problem(
                    "manifest",
                    f"source segment {src.get('path')!r} (seq {seq}): "
                    "chain link does not recompute",
                    path=pkg.MANIFEST,
                )
            )


def _public_key(doc: dict[str, Any]) -> bytes | None:
    key = doc.get("signing_key")
    if not isinstance(key, dict) or key.get("algorithm") != "Ed25519":
        return None
    try:
        raw = base64.b64decode(str(key.get("public_key")), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _check_listed(root: Path, ent: dict[str, Any], rep: Report) -> None:
    name = str(ent["name"])
    want_sha, want_size = ent.get("sha256"), ent.get("bytes")
    rep.count("files")
    p = root / name
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        rep.add(Problem("missing_file", "listed in the manifest but not present", path=name))
        return
    if not stat.S_ISREG(st.st_mode):
        rep.add(Problem("modified", "not a regular file (symlink or directory)", path=name))
        return
    try:
        digest, size = sha256_file(p, follow_symlinks=False)
    except OSError as e:
        rep.add(Problem("missing_file", f"cannot read: {e.strerror}", path=name))
        return
    rep.count("bytes_hashed", size)
    if size != want_size:
        rep.add(Problem("modified", f"size {size} bytes, manifest says {want_size}", path=name))
    elif digest != want_sha:
        rep.add(
            Problem(
                "modified",
                "SHA-256 does not match the manifest: file content was altered",
                path=name,
            )
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m vigil.evidence.verify PACKAGE [--fingerprint FP]``: exit status 0 when
    the package verifies, 1 otherwise (what failed is printed)."""
    ap = argparse.ArgumentParser(
        prog="python -m vigil.evidence.verify", description="Verify a Vigil evidence package."
    )
    ap.add_argument("package", type=Path, help="package directory")
    ap.add_argument("--fingerprint", help="expected signing key fingerprint (any spacing)")
    args = ap.parse_args(argv)
    rep = verify_package(args.package, args.fingerprint)
    sys.stdout.write(rep.summary() + "\n")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
