"""`vigil user` and `vigil token`: passwords prompted twice (never arguments), the same
rules as the API, audit records as the OS user, and the accounts work in the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vigil.api.accounts import Accounts
from vigil.api.audit import AuditLog
from vigil.api.passwords import default_hasher
from vigil.cli.user_cmd import app, token_app
from vigil.index.db import Database

PW = "a perfectly good passphrase"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "vigil.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "storage": {"path": str(tmp_path / "storage")},
                "cameras": [{"name": "cam1", "main": {"file": "/dev/null"}}],
            }
        )
    )
    return p


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'storage' / 'vigil.db'}")


def test_add_admin_prompts_twice_and_checks_strength(cfg: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["add", "--admin", "Root", "-c", str(cfg)], input=f"{PW}\n{PW}\n")
    assert r.exit_code == 0, r.output
    assert PW not in r.output  # hidden input
    db = _db(tmp_path)
    acc = Accounts(db, default_hasher())
    user = acc.get("root")
    assert user is not None and user.role == "admin"
    assert acc.check_login("root", PW) is not None
    rec = AuditLog(db).search(action="user.create")[0][0]
    assert rec.actor_kind == "cli" and rec.target == "root"
    db.close()

    # mismatch, then weak, then fine
    r = runner.invoke(
        app,
        ["add", "bob", "--role", "operator", "--camera", "cam1", "-c", str(cfg)],
        input=f"{PW}\nsomething else\n" + "short\nshort\n" + f"{PW}\n{PW}\n",
    )
    assert r.exit_code == 0, r.output
    assert "at least 12" in r.output
    db = _db(tmp_path)
    acc = Accounts(db, default_hasher())
    bob = acc.get("bob")
    assert bob is not None
    assert acc.grants(bob.id) == {
        "cam1": frozenset({"view_live", "view_recordings", "export", "configure"})
    }
    db.close()

    r = runner.invoke(app, ["add", "root", "-c", str(cfg)], input=f"{PW}\n{PW}\n")
    assert r.exit_code == 1 and "already exists" in r.output


def test_password_is_never_an_argument(cfg: Path) -> None:
    r = CliRunner().invoke(app, ["add", "x", "--password", PW, "-c", str(cfg)])
    assert r.exit_code != 0


def test_list_and_passwd(cfg: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["add", "--admin", "root", "-c", str(cfg)], input=f"{PW}\n{PW}\n")
    r = runner.invoke(app, ["list", "-c", str(cfg)])
    assert r.exit_code == 0 and "root" in r.output and "admin" in r.output
    new = "another perfectly good one"
    r = runner.invoke(app, ["passwd", "root", "-c", str(cfg)], input=f"{new}\n{new}\n")
    assert r.exit_code == 0, r.output
    db = _db(tmp_path)
    acc = Accounts(db, default_hasher())
    assert acc.check_login("root", new) is not None and acc.check_login("root", PW) is None
    db.close()
    r = runner.invoke(app, ["passwd", "nobody", "-c", str(cfg)])
    assert r.exit_code == 1


def test_tokens(cfg: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["add", "--admin", "root", "-c", str(cfg)], input=f"{PW}\n{PW}\n")
    r = runner.invoke(
        token_app,
        [
            "create",
            "--user",
            "root",
            "--name",
            "ha",
            "--scope",
            "read",
            "--days",
            "7",
            "-c",
            str(cfg),
        ],
    )
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    assert secret.startswith("vgl_")
    tid = secret.split("_")[1]
    db = _db(tmp_path)
    tok, user, _ = Accounts(db, default_hasher()).lookup_token(secret)
    assert tok is not None and user is not None and tok.scopes == ("read",)
    db.close()
    r = runner.invoke(token_app, ["list", "-c", str(cfg)])
    assert tid in r.output and secret not in r.output and "active" in r.output
    r = runner.invoke(token_app, ["revoke", tid, "-c", str(cfg)])
    assert r.exit_code == 0
    r = runner.invoke(token_app, ["list", "-c", str(cfg)])
    assert "revoked" in r.output
    r = runner.invoke(
        token_app, ["create", "--user", "root", "--name", "x", "--scope", "god", "-c", str(cfg)]
    )
    assert r.exit_code == 2 and "unknown scopes" in r.output
    r = runner.invoke(
        token_app, ["create", "--user", "root", "--name", "x", "--days", "9999", "-c", str(cfg)]
    )
    assert r.exit_code == 2
    db = _db(tmp_path)
    from vigil.evidence.keys import KeyStore

    res = AuditLog(db).verify()
    signed = AuditLog(db, KeyStore(tmp_path / "storage" / ".keys")).verify()
    assert res.records == 3 and signed.ok and signed.signed
    db.close()
