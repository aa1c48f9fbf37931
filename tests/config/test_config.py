"""Config validation: every bad input names the file, the field and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.config.loader import ConfigError, json_schema, load_config, parse_config
from vigil.config.model import Credentials
from vigil.config.units import parse_bytes, parse_duration

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(text)
    return p


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_config(_write(tmp_path, text))
    return [str(p) for p in ei.value.problems]


BASE = "storage:\n  path: /tmp/x\n"


def test_example_config_is_valid() -> None:
    cfg = load_config(REPO / "config" / "vigil.example.yaml")
    assert cfg.camera("front-door").retention is not None
    assert cfg.retention_for("front-door").max_age == 72 * 3600


def test_committed_schema_is_current() -> None:
    committed = json.loads((REPO / "config" / "vigil.schema.json").read_text())
    assert committed == json_schema(), "run `vigil config schema -o config/vigil.schema.json`"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, BASE))
    assert cfg.recording.segment_seconds == 60
    assert cfg.database_url() == "sqlite:////tmp/x/vigil.db"


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    (p,) = _problems(tmp_path, "storage:\n  path: [unclosed\n")
    assert "vigil.yaml" in p and "line" in p and "invalid YAML" in p


def test_empty_file(tmp_path: Path) -> None:
    (p,) = _problems(tmp_path, "")
    assert "empty" in p


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_key_is_error(tmp_path: Path) -> None:
    probs = _problems(tmp_path, BASE + "recording:\n  segment_secs: 30\n")
    assert any("recording.segment_secs" in p and "unknown key" in p for p in probs)


def test_wrong_type(tmp_path: Path) -> None:
    probs = _problems(tmp_path, BASE + "recording:\n  segment_seconds: lots\n")
    assert any("recording.segment_seconds" in p and "number" in p for p in probs)


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    text = BASE + (
        "recording:\n  segment_seconds: 1\n"
        "cameras:\n  - name: Bad Name\n    main: {url: 'rtsp://h/x'}\n"
        "  - name: ok\n    main: {url: 'ftp://h/x'}\n"
    )
    probs = _problems(tmp_path, text)
    assert len(probs) == 3
    assert any("cameras[0](name=Bad Name).name" in p for p in probs)
    assert any("cameras[1](name=ok).main.url" in p and "scheme" in p for p in probs)


def test_duplicate_camera_names(tmp_path: Path) -> None:
    text = BASE + (
        "cameras:\n  - name: a\n    main: {url: 'rtsp://h/1'}\n"
        "  - name: a\n    main: {url: 'rtsp://h/2'}\n"
    )
    (p,) = _problems(tmp_path, text)
    assert "duplicate camera name 'a'" in p


@pytest.mark.parametrize(
    "name", ["../etc", "a/b", "..", "", "A", "x" * 64, "cam\x00", "-lead", "a b"]
)
def test_camera_names_cannot_escape_paths(tmp_path: Path, name: str) -> None:
    text = BASE + f"cameras:\n  - name: {json.dumps(name)}\n    main: {{url: 'rtsp://h/1'}}\n"
    probs = _problems(tmp_path, text)
    assert any(".name" in p for p in probs)


@pytest.mark.parametrize(
    "url,why",
    [
        ("file:///etc/passwd", "scheme"),
        ("rtsp://h/`id`", "characters"),
        ("rtsp://h/x | nc evil 1", "characters"),
        ("concat:/a|/b", "characters"),
        ("subfile:,,start,0,end,0,,:/etc/passwd", "scheme"),
        ("rtsp:///nohost", "no host"),
        ("rtsp://h:99999/x", "port"),
        ("rtsp://h/x\n", "characters"),
    ],
)
def test_dangerous_urls_rejected(tmp_path: Path, url: str, why: str) -> None:
    data = {"storage": {"path": "/tmp/x"}, "cameras": [{"name": "c", "main": {"url": url}}]}
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "t.yaml")
    assert any(why in p.reason for p in ei.value.problems), ei.value.problems


def test_rfc3986_sub_delims_are_data_not_commands() -> None:
    # ';', '$', '(' and ')' are legal in URL paths. No shell ever sees the URL (it is one
    # argument to FFmpeg, with a protocol whitelist), so they are accepted as plain data.
    url = "rtsp://h/x;$(reboot)"
    data = {"storage": {"path": "/tmp/x"}, "cameras": [{"name": "c", "main": {"url": url}}]}
    assert parse_config(data).cameras[0].main.url == url


def test_file_source_must_be_absolute(tmp_path: Path) -> None:
    data = {"storage": {"path": "/x"}, "cameras": [{"name": "c", "main": {"file": "rel.mp4"}}]}
    with pytest.raises(ConfigError, match="absolute"):
        parse_config(data)


def test_credentials_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Credentials(username="u", password_env="CAM_PW")
    monkeypatch.setenv("CAM_PW", "s3cret")
    assert c.resolve_password() == "s3cret"
    monkeypatch.delenv("CAM_PW")
    with pytest.raises(LookupError, match="CAM_PW"):
        c.resolve_password()


def test_inline_password_not_in_repr_or_errors(tmp_path: Path) -> None:
    text = BASE + (
        "cameras:\n  - name: c\n    main: {url: 'rtsp://h/1'}\n"
        "    credentials: {username: u, password: hunter2, password_env: X}\n"
    )
    probs = _problems(tmp_path, text)
    assert probs and all("hunter2" not in p for p in probs)
    ok = parse_config(
        {
            "storage": {"path": "/x"},
            "cameras": [
                {
                    "name": "c",
                    "main": {"url": "rtsp://h/1"},
                    "credentials": {"username": "u", "password": "hunter2"},
                }
            ],
        }
    )
    assert "hunter2" not in repr(ok) and "hunter2" not in ok.model_dump_json()


def test_units() -> None:
    assert parse_bytes("50GB") == 50 * 10**9
    assert parse_bytes("2GiB") == 2 * 1024**3
    assert parse_duration("72h") == 259200
    assert parse_duration("7d") == 604800
    with pytest.raises(ValueError):
        parse_bytes("lots")
    with pytest.raises(ValueError):
        parse_duration("3 fortnights")


def test_human_units_in_yaml(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, BASE + "retention:\n  max_age: 3d\n  max_bytes: 1GiB\n"))
    assert cfg.retention.max_age == 3 * 86400 and cfg.retention.max_bytes == 1024**3


def test_configuration_doc_is_current() -> None:
    from vigil.config.docs import render

    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == render(), "run `vigil config docs -o docs/configuration.md`"
