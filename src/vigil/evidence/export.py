"""Evidence export: a time range of one camera as a signed, self-verifying package.

What :func:`export_evidence` guarantees, in order:

1. The request is checked before anything is touched (camera known, range ordered and not
   longer than the configured maximum, footage present) with an ``EvidenceError`` that
   says what is wrong.
2. The range is put on hold (``kind="export"``, reference = export id) *before* any file
   is read, so retention cannot delete the originals during or after the export. The hold
   does not expire: it is released by the operator (``Index.remove_hold``) when the case
   is closed, because only they know when the originals are no longer needed.
3. Every source segment is re-hashed and compared with the recorded SHA-256; a segment
   that changed since it was recorded stops the export (signing altered footage as
   evidence would be worse than no export). Run ``verify_storage`` to see the details.
4. Clips are assembled by stream copy (``vigil.evidence.playback.export_mp4``): the
   recorded bitstream, not a re-encode. A range crossing a gap gives several clips; the
   gaps and their reasons are listed in the manifest.
5. The package is written in a hidden temporary directory, fsynced, and renamed into
   place, so a crash never leaves a half-package that looks complete. On any failure the
   hold is released again and nothing is left behind.

The package format is described in :mod:`vigil.evidence.package`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

import vigil
from vigil.evidence import package as pkg
from vigil.evidence.chain import GENESIS
from vigil.evidence.hashing import hash_files, sha256_file
from vigil.evidence.keys import KeyStore, format_fingerprint
from vigil.evidence.playback import (
    DEFAULT_PLAYBACK_MAX_RANGE_US,
    NoFootageError,
    PlaybackResult,
    export_mp4,
)
from vigil.evidence.report import EvidenceError
from vigil.evidence.timeline import TimeRangeError, validate_range
from vigil.index.evidence_models import ChainHead, ChainTombstone, EvidenceExport
from vigil.index.models import Segment
from vigil.index.repository import Index, now_us

log = logging.getLogger(__name__)

DEFAULT_EXPORT_MAX_RANGE_US = DEFAULT_PLAYBACK_MAX_RANGE_US
# (stage, fraction of the whole export done, 0..1)
ExportProgress = Callable[[str, float], None]
_MAX_TEXT = 2000  # reason; generous, but a manifest is not a document store
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def export_evidence(
    index: Index,
    keys: KeyStore,
    camera: str,
    start_us: int,
    end_us: int,
    reason: str,
    case_id: str,
    exported_by: str,
    out_dir: Path,
    progress: ExportProgress | None = None,
    *,
    max_range_us: int = DEFAULT_EXPORT_MAX_RANGE_US,
) -> Path:
    """Export [start_us, end_us) of ``camera`` into a new package directory under
    ``out_dir``; returns the package path.

    ``reason`` (why) and ``exported_by`` (who) are required; ``case_id`` may be empty.
    Raises ``EvidenceError`` for an unknown camera, an empty or inverted range, a range
    longer than ``max_range_us``, a range without footage, or a source segment that no
    longer matches its recorded hash. ``KeyStoreError`` (an ``EvidenceError``) if the
    instance key cannot sign.
    """
    report = progress or (lambda _stage, _f: None)
    _validate(index, camera, start_us, end_us, reason, case_id, exported_by, max_range_us)
    rows = [seg for _c, seg in index.segments(camera, start_us, end_us)]
    if not rows:
        raise EvidenceError(
            f"no footage of {camera!r} between {pkg.iso(start_us)} and "
            f"{pkg.iso(end_us)}{_gap_note(index, camera, start_us, end_us)}"
        )

    export_id = str(uuid.uuid4())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{_SAFE.sub('_', camera)}-{pkg.iso(start_us)[:19].replace(':', '')}Z-{export_id[:8]}"
    final = out_dir / name
    work = out_dir / f".{name}.partial"
    hold_id = index.add_hold(
        camera,
        start_us,
        end_us,
        kind="export",
        reference=export_id,
        reason=f"evidence export{f' for case {case_id}' if case_id else ''}: {reason}"[:_MAX_TEXT],
    )
    renamed = False
    try:
        report("verify sources", 0.0)
        _check_sources(index, camera, rows)
        report("assemble", 0.2)
        work.mkdir(mode=0o700)
        try:
            result = export_mp4(
                index,
                camera,
                start_us,
                end_us,
                work / "clip.mp4",
                on_gap="split",
                max_range_us=max_range_us,
            )
        except NoFootageError as e:
            raise EvidenceError(f"no playable footage of {camera!r} in the range: {e}") from e
        except TimeRangeError as e:
            raise EvidenceError(str(e)) from e
        report("sign", 0.8)
        doc = _manifest(
            index,
            keys,
            camera,
            start_us,
            end_us,
            reason,
            case_id,
            exported_by,
            export_id,
            result,
            work,
        )
        manifest = pkg.encode_manifest(doc)
        key, sig = keys.sign(manifest)
        if key.key_id != doc["signing_key"]["key_id"]:  # rotated between the two calls
            raise EvidenceError("the instance key was rotated during the export; retry")
        listed = {f["name"] for f in doc["files"]}
        stray = sorted(n for n in os.listdir(work) if n not in listed)
        if stray:  # e.g. a temp file the muxer left: the package would not verify
            raise EvidenceError(f"unexpected files in the export directory: {stray}")
        _write(work / pkg.MANIFEST, manifest)
        _write(work / pkg.SIGNATURE, sig)
        for p in work.iterdir():
            os.chmod(p, 0o600)
            _fsync(p)
        _fsync(work)
        os.rename(work, final)
        renamed = True
        _fsync(out_dir)
        with index.db.session() as s:
            s.add(
                EvidenceExport(
                    id=export_id,
                    camera_id=index.camera_id(camera),
                    start_us=start_us,
                    end_us=end_us,
                    reason=reason,
                    case_id=case_id,
                    exported_by=exported_by,
                    created_us=doc["exported_at_us"],
                    path=str(final),
                    manifest_sha256=hashlib.sha256(manifest).hexdigest(),
                    key_id=key.key_id,
                    hold_id=hold_id,
                )
            )
            s.commit()
    except BaseException:
        index.remove_hold(hold_id)
        shutil.rmtree(work, ignore_errors=True)
        if renamed:  # not recorded in the export log: do not leave an untracked package
            shutil.rmtree(final, ignore_errors=True)
        raise
    report("done", 1.0)
    log.info(
        "evidence exported", extra={"camera": camera, "export_id": export_id, "path": str(final)}
    )
    return final


# -- steps -------------------------------------------------------------------------------------


def _validate(
    index: Index,
    camera: str,
    start_us: int,
    end_us: int,
    reason: str,
    case_id: str,
    exported_by: str,
    max_range_us: int,
) -> None:
    if not isinstance(camera, str) or camera not in index.camera_names():
        raise EvidenceError(f"unknown camera {camera!r}")
    try:
        validate_range(index, camera, start_us, end_us, max_range_us)
    except TimeRangeError as e:
        raise EvidenceError(str(e)) from e
    if not reason or not reason.strip():
        raise EvidenceError("a reason is required: say why this footage is exported")
    if len(reason) > _MAX_TEXT:
        raise EvidenceError(f"reason is longer than {_MAX_TEXT} characters")
    if not exported_by or not exported_by.strip():
        raise EvidenceError("exported_by is required: say who exports this footage")
    for what, v in (("exported_by", exported_by), ("case_id", case_id)):
        if len(v) > 128:
            raise EvidenceError(f"{what} is longer than 128 characters")


def _gap_note(index: Index, camera: str, start_us: int, end_us: int) -> str:
    reasons = sorted({g.reason for _c, g in index.gaps(camera, start_us, end_us)})
    return f" (recorded gaps: {', '.join(reasons)})" if reasons else ""


def _check_sources(index: Index, camera: str, rows: list[Segment]) -> None:
    """Refuse to sign footage whose source no longer matches what was recorded. Missing
    files are left to playback, which turns them into documented gaps."""
    paths = [index.abspath(r.path) for r in rows]
    for row, (_p, res) in zip(rows, hash_files(paths), strict=True):
        if isinstance(res, FileNotFoundError):
            continue
        if isinstance(res, OSError):
            raise EvidenceError(f"cannot read source segment {row.path}: {res.strerror}")
        if res[0] != row.sha256:
            raise EvidenceError(
                f"source segment {row.path} (chain seq {row.chain_seq}) of {camera!r} no "
                "longer matches the hash recorded when it was written; refusing to export "
                "altered footage (run storage verification for details)"
            )


def _manifest(
    index: Index,
    keys: KeyStore,
    camera: str,
    start_us: int,
    end_us: int,
    reason: str,
    case_id: str,
    exported_by: str,
    export_id: str,
    result: PlaybackResult,
    work: Path,
) -> dict[str, Any]:
    key = keys.active
    clip_names = [c.path.name for c in result.clips]
    for n in clip_names:
        if pkg.unsafe_name_reason(n) is not None:  # the playback module chose the names
            raise EvidenceError(f"clip name {n!r} is not a safe package file name")
    readme = pkg.readme_text(
        export_id=export_id,
        camera=camera,
        start_us=start_us,
        end_us=end_us,
        case_id=case_id,
        fingerprint=key.fingerprint,
        public_b64=key.public_b64,
        clip_names=clip_names,
    )
    _write(work / pkg.README, readme.encode("utf-8"))

    files = []
    for n, role in [*((n, "clip") for n in clip_names), (pkg.README, "readme")]:
        digest, size = sha256_file(work / n)
        files.append({"name": n, "role": role, "sha256": digest, "bytes": size})

    used = {rel for c in result.clips for rel in c.segments}
    cid = index.camera_id(camera)
    with index.db.session() as s:
        rows = s.scalars(
            select(Segment)
            .where(Segment.camera_id == cid, Segment.path.in_(used))
            .order_by(Segment.start_us, Segment.id)
        ).all()
        sources = [_source_entry(s, cid, r) for r in rows]
        head = s.get(ChainHead, cid)
        chain_head = (
            None
            if head is None
            else {
                "seq": head.seq,
                "chain_hash": head.chain_hash,
                "signed_us": head.signed_us,
                "key_fingerprint": format_fingerprint(head.key_id),
                "signature": head.signature,
            }
        )
    by_path = {src["path"]: src for src in sources}
    exported = now_us()
    return {
        "format": pkg.FORMAT,
        "format_version": pkg.FORMAT_VERSION,
        "export_id": export_id,
        "camera": camera,
        "requested_range": pkg.time_range(start_us, end_us),
        "clips": [
            {
                "file": c.path.name,
                **pkg.time_range(c.start_us, c.end_us),
                "duration_us": c.duration_us,
                "source_seqs": [by_path[p]["seq"] for p in c.segments if p in by_path],
            }
            for c in result.clips
        ],
        "gaps": [
            {**pkg.time_range(g.start_us, g.end_us), "reason": g.reason, "detail": g.detail}
            for g in result.gaps
        ],
        "files": files,
        "source_segments": sources,
        "chain": {
            "algorithm": "sha256",
            "link": "SHA-256 of the canonical encoding (tag 'vigil-chain-link-v1'; each field "
            "as an 8-byte big-endian length + UTF-8 bytes; integers in decimal) of: camera, "
            "seq, prev_chain_hash, sha256, start_us, end_us, bytes, path",
            "genesis_prev_chain_hash": GENESIS,
            "head_signature": "Ed25519 over the canonical encoding (tag "
            "'vigil-chain-head-v1') of: camera, seq, chain_hash, signed_us",
            "head_at_export": chain_head,
        },
        "exported_at": pkg.iso(exported),
        "exported_at_us": exported,
        "exported_by": exported_by,
        "reason": reason,
        "case_id": case_id,
        "vigil_version": vigil.__version__,
        "signing_key": {
            "algorithm": "Ed25519",
            "public_key": key.public_b64,
            "fingerprint": key.fingerprint,
            "key_id": key.key_id,
        },
        "hold": {"kind": "export", "reference": export_id},
    }


def _source_entry(s: Any, camera_id: int, r: Segment) -> dict[str, Any]:
    """A source segment with its chain position, link and the link before it, so anyone
    can recompute its ``chain_hash`` from the manifest alone."""
    prev: str | None = None
    if r.chain_seq is not None:
        if r.chain_seq == 1:
            prev = GENESIS
        else:
            prev = s.scalar(
                select(Segment.chain_hash).where(
                    Segment.camera_id == camera_id, Segment.chain_seq == r.chain_seq - 1
                )
            )
            if prev is None:
                prev = s.scalar(
                    select(ChainTombstone.chain_hash).where(
                        ChainTombstone.camera_id == camera_id, ChainTombstone.seq == r.chain_seq - 1
                    )
                )
    return {
        "path": r.path,
        "seq": r.chain_seq,
        "chain_hash": r.chain_hash,
        "prev_chain_hash": prev,
        "sha256": r.sha256,
        "start_us": r.start_us,
        "end_us": r.end_us,
        "bytes": r.bytes,
    }


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
