"""The CLI as an investigator uses it: record, look at the timeline, export signed
evidence, verify it offline, and catch tampering with the package and with the store."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.runtime.conftest import make_config, sim_camera
from vigil.cli.main import app
from vigil.config.model import VigilConfig
from vigil.runtime.nvr import NVR
from vigil.sim.controller import Simulator
from vigil.util.timefmt import format_time

runner = CliRunner()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, VigilConfig]]:
    """~12 s of two cameras recorded by the real recorder (3 s segments)."""
    tmp = tmp_path_factory.mktemp("rec")
    with Simulator() as sim:
        sim.start([sim_camera("door"), sim_camera("yard", audio=True)])
        cfg = make_config(
            tmp,
            [
                {"name": "door", "main": {"url": sim.url("door")}},
                {"name": "yard", "main": {"url": sim.url("yard")}},
            ],
        )
        nvr = NVR(cfg)
        nvr.open()
        nvr.start()
        time.sleep(12)
        nvr.stop()
    yield tmp / "vigil.yaml", cfg


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _window(cfg: VigilConfig) -> tuple[str, str]:
    from vigil.cli.common import open_index

    segs = [s for n, s in open_index(cfg).segments("door")]
    return format_time(segs[0].start_us + 1_000_000), format_time(segs[-1].end_us - 500_000)


def test_config_check_reports_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "storage: {path: /tmp/x}\ncameras:\n  - name: ../etc\n    main: {url: 'file:///etc/passwd'}\n"
    )
    code, out = _cli("config", "check", str(bad))
    assert code == 2
    assert "bad.yaml" in out and "cameras[0]" in out and "name" in out and "scheme" in out


def test_recordings_and_timeline(recorded: tuple[Path, VigilConfig]) -> None:
    cfg_path, _ = recorded
    code, out = _cli("recordings", "list", "-c", str(cfg_path), "--camera", "door")
    assert code == 0 and "segment(s)" in out and "door" in out
    code, out = _cli("timeline", "door", "--from", "-5m", "--to", "now", "-c", str(cfg_path))
    assert code == 0 and "recorded" in out and "gap" in out
    code, out = _cli("timeline", "nope", "-c", str(cfg_path))
    assert code == 2 and "unknown camera" in out
    code, out = _cli("timeline", "door", "--from", "now", "--to", "-1h", "-c", str(cfg_path))
    assert code == 2 and "after" in out


def test_export_verify_and_tamper(recorded: tuple[Path, VigilConfig], tmp_path: Path) -> None:
    cfg_path, cfg = recorded
    start, end = _window(cfg)
    code, out = _cli(
        "export",
        "door",
        "--from",
        start,
        "--to",
        end,
        "--reason",
        "break-in at the door",
        "--case",
        "C-42",
        "-o",
        str(tmp_path / "out"),
        "-c",
        str(cfg_path),
        "--by",
        "tester",
    )
    assert code == 0, out
    (package,) = (tmp_path / "out").iterdir()
    code, out = _cli("verify", str(package))
    assert code == 0 and "OK" in out, out
    fp = next(line for line in out.splitlines() if "fingerprint" in line).split(": ", 1)[1]
    code, out = _cli("verify", str(package), "--fingerprint", fp)
    assert code == 0, out

    # Flip one byte in the clip: verification fails and names the file.
    for clip in package.glob("clip*.mp4"):
        bad = tmp_path / "bad"
        shutil.copytree(package, bad)
        data = bytearray((bad / clip.name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (bad / clip.name).write_bytes(bytes(data))
        code, out = _cli("verify", str(bad))
        assert code == 1 and "FAILED" in out and clip.name in out, out
        shutil.rmtree(bad)
        break

    # Flip one byte in the manifest: the signature no longer verifies.
    bad = tmp_path / "badm"
    shutil.copytree(package, bad)
    m = bytearray((bad / "manifest.json").read_bytes())
    m[m.index(b"break-in")] ^= 0x20
    (bad / "manifest.json").write_bytes(bytes(m))
    code, out = _cli("verify", str(bad))
    assert code == 1 and "manifest" in out

    # Exports are bad input too: no footage, too long, unknown camera.
    code, out = _cli(
        "export",
        "door",
        "--from",
        "2001-01-01T00:00Z",
        "--to",
        "2001-01-01T00:10Z",
        "--reason",
        "x",
        "-o",
        str(tmp_path / "o2"),
        "-c",
        str(cfg_path),
    )
    assert code == 1 and "footage" in out.lower()
    code, out = _cli(
        "export",
        "door",
        "--from",
        "2001-01-01T00:00Z",
        "--to",
        "2001-01-05T00:00Z",
        "--reason",
        "x",
        "-o",
        str(tmp_path / "o3"),
        "-c",
        str(cfg_path),
    )
    assert code == 1 and ("longer" in out or "maximum" in out or "range" in out), out


def test_storage_chain_detects_tampering(recorded: tuple[Path, VigilConfig]) -> None:
    cfg_path, cfg = recorded
    code, out = _cli("verify", "--storage", "-c", str(cfg_path))
    assert code == 0, out
    root = cfg.storage.path
    files = sorted((root / "yard").rglob("*.mp4"))
    assert len(files) >= 3
    deleted, modified, source = files[0], files[1], files[2]
    deleted_bytes = deleted.read_bytes()
    modified_bytes = modified.read_bytes()
    inserted = source.with_name("1000000000000000-9.mp4")
    try:
        deleted.unlink()
        data = bytearray(modified_bytes)
        data[-100] ^= 0xFF
        modified.write_bytes(bytes(data))
        shutil.copy(source, inserted)
        code, out = _cli("verify", "--storage", "--camera", "yard", "-c", str(cfg_path))
        assert code == 1
        assert "MISSING" in out and deleted.name in out, out
        assert "MODIFIED" in out and modified.name in out, out
        assert "INSERTED" in out and inserted.name in out, out
    finally:
        deleted.write_bytes(deleted_bytes)
        modified.write_bytes(modified_bytes)
        inserted.unlink(missing_ok=True)
    code, out = _cli("verify", "--storage", "-c", str(cfg_path))
    assert code == 0, out


def test_keys_rotate_keeps_old_exports_verifiable(
    recorded: tuple[Path, VigilConfig], tmp_path: Path
) -> None:
    cfg_path, cfg = recorded
    start, end = _window(cfg)
    code, out = _cli(
        "export",
        "yard",
        "--from",
        start,
        "--to",
        end,
        "--reason",
        "r",
        "-o",
        str(tmp_path / "before"),
        "-c",
        str(cfg_path),
    )
    assert code == 0, out
    code, shown = _cli("keys", "show", "-c", str(cfg_path))
    assert code == 0 and "active" in shown
    code, out = _cli("keys", "rotate", "-c", str(cfg_path))
    assert code == 0 and "retired" in out
    code, shown2 = _cli("keys", "show", "-c", str(cfg_path))
    assert "retired" in shown2 and shown2.count("active") == 1
    (package,) = (tmp_path / "before").iterdir()
    code, out = _cli("verify", str(package))
    assert code == 0, out
    code, out = _cli("verify", "--storage", "-c", str(cfg_path))
    assert code == 0, out
