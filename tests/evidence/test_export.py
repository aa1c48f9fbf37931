"""Evidence export: the package, its hold, and refusals with clear errors.

Uses the shared ``make_footage`` fixture (real fMP4 segments indexed like the recorder does)
with the hash chain installed before the footage is indexed.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import select

import vigil
from vigil.evidence import package as pkg
from vigil.evidence.chain import install_chain, link_hash
from vigil.evidence.export import export_evidence
from vigil.evidence.keys import ENV_PASSPHRASE, KeyStore, key_id_of
from vigil.evidence.report import EvidenceError
from vigil.evidence.verify import verify_package, verify_storage
from vigil.index.evidence_models import EvidenceExport
from vigil.index.models import Hold


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeyStore:
    monkeypatch.delenv(ENV_PASSPHRASE, raising=False)
    return KeyStore(tmp_path / "keys")


@pytest.fixture
def chained(evidence_index: Any, keys: KeyStore) -> Any:
    """The shared index with the chain hooks registered, before any footage exists."""
    install_chain(evidence_index.index, keys)
    return evidence_index


@pytest.fixture
def fo(chained: Any, make_footage: Any) -> Any:
    """Frames 0-119 in three 4 s segments, a 3 s offline gap, frames 150-229 in two more."""
    return make_footage(
        [(0, 40), (40, 40), (80, 40), (150, 40), (190, 40)], gaps=[(120, 150, "offline")]
    )


def _export(fo: Any, keys: KeyStore, out: Path, a: int, b: int, **kw: Any) -> Path:
    args: dict[str, Any] = {
        "reason": "burglary at the back door",
        "case_id": "CASE-2023-0042",
        "exported_by": "officer.jones",
    }
    args.update(kw)
    return export_evidence(fo.index, keys, fo.camera, fo.wall(a), fo.wall(b), out_dir=out, **args)


def _manifest(p: Path) -> dict[str, Any]:
    return json.loads((p / pkg.MANIFEST).read_bytes())


def _resign(p: Path, doc: dict[str, Any], key: KeyStore) -> None:
    """Rewrite the manifest as an attacker with their own key would (a valid signature)."""
    info = key.active
    doc["signing_key"] = {
        "algorithm": "Ed25519",
        "public_key": info.public_b64,
        "fingerprint": info.fingerprint,
        "key_id": info.key_id,
    }
    data = pkg.encode_manifest(doc)
    (p / pkg.MANIFEST).write_bytes(data)
    (p / pkg.SIGNATURE).write_bytes(key.sign(data)[1])


@pytest.fixture
def package(fo: Any, keys: KeyStore, tmp_path: Path) -> Path:
    return _export(fo, keys, tmp_path / "out", 15, 95)  # 1.5 s .. 9.5 s: three segments


def test_package_verifies_and_describes_the_export(
    package: Path, fo: Any, keys: KeyStore, tmp_path: Path
) -> None:
    names = sorted(p.name for p in package.iterdir())
    assert names == ["README.txt", "clip.mp4", "manifest.json", "manifest.sig"]
    rep = verify_package(package, expected_fingerprint=keys.active.fingerprint)
    assert rep.ok, rep.summary()
    assert rep.fingerprint == keys.active.fingerprint
    assert rep.fingerprint in rep.summary()

    doc = _manifest(package)
    assert doc["format"] == "vigil-evidence" and doc["format_version"] == 1
    assert doc["camera"] == "cam1"
    assert (doc["requested_range"]["start_us"], doc["requested_range"]["end_us"]) == (
        fo.wall(15),
        fo.wall(95),
    )
    assert doc["requested_range"]["start"] == "2023-11-14T22:13:21.500000Z"
    (clip,) = doc["clips"]
    assert clip["file"] == "clip.mp4"
    assert fo.wall(15) <= clip["start_us"] < fo.wall(16) and clip["end_us"] == fo.wall(95)
    assert [(s["seq"], s["path"]) for s in doc["source_segments"]] == [
        (1, fo.index.relpath(fo.segments[0].path)),
        (2, fo.index.relpath(fo.segments[1].path)),
        (3, fo.index.relpath(fo.segments[2].path)),
    ]
    assert clip["source_seqs"] == [1, 2, 3]
    rows = {s.path: s for _c, s in fo.index.segments("cam1")}
    for src in doc["source_segments"]:
        assert src["sha256"] == rows[src["path"]].sha256
        assert src["chain_hash"] == rows[src["path"]].chain_hash
        assert src["chain_hash"] == link_hash(
            "cam1", src["seq"], src["prev_chain_hash"], src["sha256"], src["start_us"],
            src["end_us"], src["bytes"], src["path"],
        )  # fmt: skip
    files = {f["name"]: f for f in doc["files"]}
    assert files["clip.mp4"]["bytes"] == (package / "clip.mp4").stat().st_size
    assert set(files) == {"clip.mp4", "README.txt"}
    assert (doc["exported_by"], doc["reason"], doc["case_id"]) == (
        "officer.jones",
        "burglary at the back door",
        "CASE-2023-0042",
    )
    assert doc["vigil_version"] == vigil.__version__
    assert doc["signing_key"]["fingerprint"] == keys.active.fingerprint
    assert doc["chain"]["head_at_export"]["seq"] == 5
    assert keys.active.fingerprint in (package / "README.txt").read_text()

    # The recipient has nothing but the package: copy it away and close the system.
    fo.index.db.close()
    shutil.rmtree(tmp_path / "keys")
    elsewhere = shutil.copytree(package, tmp_path / "recipient" / package.name)
    assert verify_package(elsewhere, expected_fingerprint=rep.fingerprint).ok


def test_clip_is_a_stream_copy_of_the_range(package: Path, fo: Any) -> None:
    with av.open(str(package / "clip.mp4")) as c:
        frames = [fo.frame_number(f) for f in c.decode(video=0)]
    assert frames[0] == 15 and frames[-1] == 94


@pytest.mark.parametrize("where", [0, 7, 1000, 0.5, -1])
def test_flipped_clip_byte_names_the_file(package: Path, where: float) -> None:
    clip = package / "clip.mp4"
    data = bytearray(clip.read_bytes())
    i = int(len(data) * where) if isinstance(where, float) else where
    data[i] ^= 0x40
    clip.write_bytes(bytes(data))
    rep = verify_package(package)
    assert [(p.kind, p.path) for p in rep.problems] == [("modified", "clip.mp4")], rep.summary()


def test_flipped_readme_byte_is_caught(package: Path) -> None:
    f = package / "README.txt"
    f.write_bytes(f.read_bytes().replace(b"VIGIL", b"VIGIT", 1))
    assert [(p.kind, p.path) for p in verify_package(package).problems] == [
        ("modified", "README.txt")
    ]


@pytest.mark.parametrize("target", [b"officer.jones", b"CASE-2023-0042", b'"format_version": 1'])
def test_flipped_manifest_byte_fails_the_signature(package: Path, target: bytes) -> None:
    m = package / pkg.MANIFEST
    data = bytearray(m.read_bytes())
    i = data.index(target) + len(target) - 1
    data[i] ^= 0x01
    m.write_bytes(bytes(data))
    rep = verify_package(package)
    assert "signature" in {p.kind for p in rep.problems}, rep.summary()
    assert not rep.ok


def test_manifest_byte_breaking_json_is_a_signature_failure(package: Path) -> None:
    m = package / pkg.MANIFEST
    data = bytearray(m.read_bytes())
    data[0] ^= 0x01  # "{" -> "z"
    m.write_bytes(bytes(data))
    rep = verify_package(package)
    assert [p.kind for p in rep.problems] == ["signature"]


def test_package_resigned_with_another_key(package: Path, keys: KeyStore, tmp_path: Path) -> None:
    genuine = keys.active.fingerprint
    other = KeyStore(tmp_path / "attacker")
    doc = _manifest(package)
    doc["case_id"] = "CASE-FORGED"
    _resign(package, doc, other)
    strict = verify_package(package, expected_fingerprint=genuine)
    assert [p.kind for p in strict.problems] == ["fingerprint"]
    assert strict.fingerprint == other.active.fingerprint != genuine
    # without an expected fingerprint it verifies, but shows whose key signed it
    loose = verify_package(package)
    assert loose.ok and loose.fingerprint == other.active.fingerprint


def test_signature_by_another_key_over_genuine_manifest(package: Path, tmp_path: Path) -> None:
    other = KeyStore(tmp_path / "attacker")
    (package / pkg.SIGNATURE).write_bytes(other.sign((package / pkg.MANIFEST).read_bytes())[1])
    assert [p.kind for p in verify_package(package).problems] == ["signature"]


def test_missing_and_extra_files(package: Path) -> None:
    (package / "clip.mp4").rename(package / "renamed.mp4")
    rep = verify_package(package)
    assert {(p.kind, p.path) for p in rep.problems} == {
        ("missing_file", "clip.mp4"),
        ("extra_file", "renamed.mp4"),
    }
    (package / "renamed.mp4").rename(package / "clip.mp4")
    (package / pkg.SIGNATURE).unlink()
    assert ("missing_file", pkg.SIGNATURE) in {
        (p.kind, p.path) for p in verify_package(package).problems
    }


def test_symlinked_clip_is_refused(package: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.mp4"
    shutil.move(package / "clip.mp4", real)
    (package / "clip.mp4").symlink_to(real)
    assert [(p.kind, p.path) for p in verify_package(package).problems] == [
        ("modified", "clip.mp4")
    ]


@pytest.mark.parametrize(
    "bad", ["../x", "/etc/passwd", "..", "a\\b", "sub/clip.mp4", "a\x00b", "C:x", "manifest.sig"]
)
def test_path_traversal_rejected_before_touching_files(
    package: Path, keys: KeyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    (tmp_path / "out" / "x").write_bytes(b"outside the package")
    doc = _manifest(package)
    doc["files"][0]["name"] = bad
    doc["clips"][0]["file"] = bad
    _resign(package, doc, keys)  # validly signed: the key holder is not trusted with paths

    def no_io(*_a: object, **_k: object) -> None:
        raise AssertionError("verify_package touched a file named by an unsafe manifest")

    monkeypatch.setattr("vigil.evidence.verify.sha256_file", no_io)
    monkeypatch.setattr("vigil.evidence.verify._check_listed", no_io)
    monkeypatch.setattr("vigil.evidence.verify.os.listdir", no_io)
    rep = verify_package(package)
    assert not rep.ok
    assert {p.kind for p in rep.problems} == {"unsafe_path"}, rep.summary()


def test_export_places_a_hold(fo: Any, keys: KeyStore, package: Path) -> None:
    export_id = _manifest(package)["export_id"]
    with fo.index.db.session() as s:
        (hold,) = s.scalars(select(Hold)).all()
        row = s.get(EvidenceExport, export_id)
    assert (hold.kind, hold.reference, hold.expires_us) == ("export", export_id, None)
    assert (hold.start_us, hold.end_us) == (fo.wall(15), fo.wall(95))
    assert row is not None and row.hold_id == hold.id and row.path == str(package)
    cands = fo.index.deletion_candidates("cam1")
    exported = {fo.index.relpath(s.path) for s in fo.segments[:3]}
    assert {c.path for c in cands}.isdisjoint(exported)
    assert len(cands) == 2  # the two segments after the gap remain deletable


def test_range_across_a_gap_gives_two_clips_and_lists_the_gap(
    fo: Any, keys: KeyStore, tmp_path: Path
) -> None:
    p = _export(fo, keys, tmp_path / "out", 100, 170)
    doc = _manifest(p)
    assert [c["file"] for c in doc["clips"]] == ["clip-001.mp4", "clip-002.mp4"]
    assert [c["source_seqs"] for c in doc["clips"]] == [[3], [4]]
    assert [(g["reason"], g["start_us"], g["end_us"]) for g in doc["gaps"]] == [
        ("offline", fo.wall(120), fo.wall(150))
    ]
    assert verify_package(p).ok


def test_openssl_can_verify_per_readme(package: Path, tmp_path: Path) -> None:
    """The README's no-Vigil instructions actually work."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl not installed: run scripts/setup.sh", pytrace=False)
    readme = (package / "README.txt").read_text()
    start = readme.index("-----BEGIN PUBLIC KEY-----")
    end = readme.index("-----END PUBLIC KEY-----") + len("-----END PUBLIC KEY-----")
    (tmp_path / "key.pem").write_text(readme[start:end] + "\n")
    out = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "key.pem"),
         "-rawin", "-in", str(package / pkg.MANIFEST), "-sigfile", str(package / pkg.SIGNATURE)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "Signature Verified Successfully" in out.stdout, out.stdout + out.stderr
    raw = (package / "README.txt").read_text()
    doc = _manifest(package)
    assert key_id_of(base64.b64decode(doc["signing_key"]["public_key"])) in raw.replace(" ", "")


# -- refusals ------------------------------------------------------------------------------------


def _no_leftovers(fo: Any, out: Path) -> None:
    with fo.index.db.session() as s:
        assert s.scalars(select(Hold)).all() == []
    assert not out.exists() or list(out.iterdir()) == []


def test_unknown_camera(fo: Any, keys: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="unknown camera 'nope'"):
        export_evidence(fo.index, keys, "nope", fo.wall(0), fo.wall(10), "r", "", "me",
                        tmp_path / "out")  # fmt: skip
    assert "nope" not in fo.index.camera_names()  # asking must not create the camera
    _no_leftovers(fo, tmp_path / "out")


def test_end_before_start(fo: Any, keys: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="must be after start"):
        _export(fo, keys, tmp_path / "out", 50, 10)
    with pytest.raises(EvidenceError, match="must be after start"):
        _export(fo, keys, tmp_path / "out", 10, 10)
    _no_leftovers(fo, tmp_path / "out")


def test_range_longer_than_maximum(fo: Any, keys: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="longer than the maximum"):
        _export(fo, keys, tmp_path / "out", 0, 100, max_range_us=5_000_000)
    _no_leftovers(fo, tmp_path / "out")


def test_range_without_footage(fo: Any, keys: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match=r"no footage .*offline"):
        _export(fo, keys, tmp_path / "out", 125, 145)  # inside the offline gap
    with pytest.raises(EvidenceError, match="no footage"):
        _export(fo, keys, tmp_path / "out", 100_000, 100_100)  # long after
    _no_leftovers(fo, tmp_path / "out")


def test_reason_and_exporter_required(fo: Any, keys: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="reason is required"):
        _export(fo, keys, tmp_path / "out", 0, 10, reason="  ")
    with pytest.raises(EvidenceError, match="exported_by is required"):
        _export(fo, keys, tmp_path / "out", 0, 10, exported_by="")
    _no_leftovers(fo, tmp_path / "out")


def test_altered_source_is_refused(fo: Any, keys: KeyStore, tmp_path: Path) -> None:
    seg = fo.segments[1].path
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(EvidenceError, match="no longer matches"):
        _export(fo, keys, tmp_path / "out", 0, 100)
    _no_leftovers(fo, tmp_path / "out")
    rep = verify_storage(fo.index, "cam1", keys)
    assert [(p.kind, p.seq) for p in rep.problems] == [("modified", 2)]


def test_signed_but_inconsistent_chain_citations_are_reported(
    package: Path, keys: KeyStore
) -> None:
    """Even a validly signed manifest must add up: source links and the cited head."""
    doc = _manifest(package)
    doc["source_segments"][1]["sha256"] = "0" * 64
    doc["chain"]["head_at_export"]["seq"] += 1
    _resign(package, doc, keys)
    rep = verify_package(package)
    assert sorted(p.message for p in rep.problems if p.kind == "manifest") == [
        "cited chain head signature does not verify",
        f"source segment {doc['source_segments'][1]['path']!r} (seq 2): chain link does not "
        "recompute",
    ]
    assert {p.kind for p in rep.problems} == {"manifest"}


def test_command_line_verifier(package: Path, keys: KeyStore) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "vigil.evidence.verify", str(package),
         "--fingerprint", keys.active.fingerprint],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert keys.active.fingerprint in ok.stdout and ": OK" in ok.stdout
    (package / "extra.txt").write_text("x")
    bad = subprocess.run(
        [sys.executable, "-m", "vigil.evidence.verify", str(package)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "EXTRA_FILE" in bad.stdout and "extra.txt" in bad.stdout


def test_exports_survive_key_rotation(
    package: Path, fo: Any, keys: KeyStore, tmp_path: Path
) -> None:
    old_fp = keys.active.fingerprint
    keys.rotate()
    assert verify_package(package, expected_fingerprint=old_fp).ok  # self-contained
    old = keys.get(old_fp)
    assert old is not None and old.retired_us is not None  # the operator can still vouch
    newer = _export(fo, keys, tmp_path / "out2", 150, 200)
    rep = verify_package(newer, expected_fingerprint=keys.active.fingerprint)
    assert rep.ok, rep.summary()
    # the cited chain head was signed before the rotation: said, not silently skipped
    assert any("earlier instance key" in n for n in rep.notes)
    assert verify_storage(fo.index, "cam1", keys).ok
