"""Package verification on hand-built packages (no recording needed), file-name safety and the
canonical encoding everything signed relies on."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from vigil.evidence import canonical
from vigil.evidence import package as pkg
from vigil.evidence.keys import ENV_PASSPHRASE, KeyStore
from vigil.evidence.report import Problem, Report
from vigil.evidence.verify import verify_package


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeyStore:
    monkeypatch.delenv(ENV_PASSPHRASE, raising=False)
    return KeyStore(tmp_path / "keys")


def _build(d: Path, keys: KeyStore, files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    info = keys.active
    doc: dict[str, Any] = {
        "format": pkg.FORMAT,
        "format_version": pkg.FORMAT_VERSION,
        "camera": "cam1",
        "clips": [],
        "source_segments": [],
        "files": [
            {"name": n, "sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)}
            for n, b in files.items()
        ],
        "signing_key": {
            "algorithm": "Ed25519",
            "public_key": info.public_b64,
            "fingerprint": info.fingerprint,
        },
        **extra,
    }
    data = pkg.encode_manifest(doc)
    (d / pkg.MANIFEST).write_bytes(data)
    (d / pkg.SIGNATURE).write_bytes(keys.sign(data)[1])
    return doc


def test_minimal_package_verifies(tmp_path: Path, keys: KeyStore) -> None:
    _build(tmp_path / "p", keys, {"a.mp4": b"video", "README.txt": b"read me"})
    rep = verify_package(tmp_path / "p", expected_fingerprint=keys.active.key_id.upper())
    assert rep.ok, rep.summary()
    assert rep.checked["files"] == 2 and rep.checked["signatures"] == 1


def test_not_a_package(tmp_path: Path) -> None:
    rep = verify_package(tmp_path / "absent")
    assert [p.kind for p in rep.problems] == ["missing_file"]
    (tmp_path / "empty").mkdir()
    rep = verify_package(tmp_path / "empty")
    assert {(p.kind, p.path) for p in rep.problems} == {
        ("missing_file", pkg.MANIFEST),
        ("missing_file", pkg.SIGNATURE),
    }


def test_manifest_not_an_object(tmp_path: Path) -> None:
    d = tmp_path / "p"
    d.mkdir()
    (d / pkg.MANIFEST).write_text("[1, 2]")
    (d / pkg.SIGNATURE).write_bytes(b"\0" * 64)
    assert [p.kind for p in verify_package(d).problems] == ["signature"]


def test_missing_or_bad_public_key(tmp_path: Path, keys: KeyStore) -> None:
    d = tmp_path / "p"
    doc = _build(d, keys, {"a.mp4": b"x"})
    doc["signing_key"]["public_key"] = "bm90IGEga2V5"  # 9 bytes, not 32
    data = pkg.encode_manifest(doc)
    (d / pkg.MANIFEST).write_bytes(data)
    rep = verify_package(d)
    assert ("manifest", pkg.MANIFEST) in {(p.kind, p.path) for p in rep.problems}
    assert rep.fingerprint is None


def test_duplicate_names_rejected(tmp_path: Path, keys: KeyStore) -> None:
    d = tmp_path / "p"
    doc = _build(d, keys, {"a.mp4": b"x"})
    doc["files"].append(dict(doc["files"][0]))
    data = pkg.encode_manifest(doc)
    (d / pkg.MANIFEST).write_bytes(data)
    (d / pkg.SIGNATURE).write_bytes(keys.sign(data)[1])
    assert {p.kind for p in verify_package(d).problems} == {"unsafe_path"}


def test_truncated_file_reports_size(tmp_path: Path, keys: KeyStore) -> None:
    d = tmp_path / "p"
    _build(d, keys, {"a.mp4": b"0123456789"})
    (d / "a.mp4").write_bytes(b"01234")
    (p,) = verify_package(d).problems
    assert (p.kind, p.path) == ("modified", "a.mp4") and "size 5" in p.message


def test_directory_in_package_is_extra(tmp_path: Path, keys: KeyStore) -> None:
    d = tmp_path / "p"
    _build(d, keys, {"a.mp4": b"x"})
    (d / "sub").mkdir()
    assert [(p.kind, p.path) for p in verify_package(d).problems] == [("extra_file", "sub")]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../x", "path separator"),
        ("/abs", "absolute path"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("C:evil", "drive"),
        (".hidden", "characters"),
        ("", "empty"),
        ("x" * 200, "too long"),
        ("résumé.mp4", "characters"),
        (pkg.MANIFEST, "reserved"),
        (42, "not a string"),
    ],
)
def test_unsafe_names(name: object, why: str) -> None:
    reason = pkg.unsafe_name_reason(name)
    assert reason is not None and why in reason


@pytest.mark.parametrize("name", ["clip.mp4", "clip-001.mp4", "README.txt", "a_b.C-1.mp4"])
def test_safe_names(name: str) -> None:
    assert pkg.unsafe_name_reason(name) is None


def test_canonical_encoding_is_unambiguous() -> None:
    assert canonical.encode("t", "ab", "c") != canonical.encode("t", "a", "bc")
    assert canonical.encode("t", 1) != canonical.encode("t", "1 ")
    assert canonical.encode("t", None) != canonical.encode("t", "")
    assert canonical.encode("t1", "x") != canonical.encode("t", "1x")
    assert canonical.encode("t", "x") == b"\0" * 7 + b"\1t" + b"\0" * 7 + b"\1x"
    with pytest.raises(TypeError):
        canonical.encode("t", True)


def test_report_summary_names_everything() -> None:
    rep = Report("storage /x")
    rep.add(Problem("missing", "file is gone", "cam1", "cam1/a.mp4", 3))
    rep.count("files", 2)
    text = rep.summary()
    assert "FAILED" in text and "MISSING [camera=cam1 seq=3 path=cam1/a.mp4]" in text
    assert "files=2" in text
