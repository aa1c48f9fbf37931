"""The audit log: append-only hash chain with a signed head; editing, deleting, reordering
or truncating records is detected; search and CSV export (formula-safe)."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update

from tests.api.conftest import Api, error_of
from vigil.api.audit import GENESIS, AuditLog, record_hash, verify
from vigil.evidence.keys import KeyStore
from vigil.index.auth_models import AuditEntry
from vigil.index.db import Database
from vigil.index.models import Meta


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    audit = AuditLog(db, KeyStore(tmp_path / "keys"))
    for i in range(6):
        audit.append(
            f"test.{i}",
            actor=f"user{i % 2}",
            actor_kind="user",
            camera="cam1",
            ip="10.0.0.1",
            detail={"i": i},
        )
    return audit


def test_chain_links_and_verifies(log: AuditLog) -> None:
    rows = list(reversed(log.search(limit=100)[0]))
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].prev_hash == GENESIS
    for a, b in itertools.pairwise(rows):
        assert b.prev_hash == a.hash
    res = log.verify()
    assert res.ok and res.signed and res.records == 6 and res.head_hash == rows[-1].hash


def _exec(log: AuditLog, stmt: object) -> None:
    with log.db.session() as s:
        s.execute(stmt)  # type: ignore[call-overload]
        s.commit()


def test_edited_record_detected(log: AuditLog) -> None:
    _exec(log, update(AuditEntry).where(AuditEntry.seq == 3).values(actor="mallory"))
    res = log.verify()
    assert not res.ok
    assert [(p.kind, p.seq) for p in res.problems] == [("modified", 3)]


def test_edited_record_with_recomputed_hash_detected(log: AuditLog) -> None:
    """Rewriting a record and its hash breaks the next link; rewriting the whole tail
    breaks the signed head."""
    with log.db.session() as s:
        row = s.get(AuditEntry, 3)
        assert row is not None
        row.detail = '{"i":99}'
        row.hash = record_hash(
            {
                k: getattr(row, k)
                for k in (
                    "seq",
                    "at_us",
                    "actor",
                    "actor_kind",
                    "action",
                    "outcome",
                    "camera",
                    "target",
                    "ip",
                    "detail",
                    "prev_hash",
                )
            }
        )
        s.commit()
    res = log.verify()
    assert ("missing", 4) in [(p.kind, p.seq) for p in res.problems]
    # now rewrite every later record consistently
    with log.db.session() as s:
        prev = s.get(AuditEntry, 3).hash  # type: ignore[union-attr]
        for seq in (4, 5, 6):
            row = s.get(AuditEntry, seq)
            assert row is not None
            row.prev_hash = prev
            row.hash = record_hash(
                {
                    k: getattr(row, k)
                    for k in (
                        "seq",
                        "at_us",
                        "actor",
                        "actor_kind",
                        "action",
                        "outcome",
                        "camera",
                        "target",
                        "ip",
                        "detail",
                        "prev_hash",
                    )
                }
            )
            prev = row.hash
        s.commit()
    res = log.verify()
    assert [p.kind for p in res.problems] == ["modified"]  # head signature no longer matches
    assert res.problems[0].seq == 6


def test_deleted_record_detected(log: AuditLog) -> None:
    _exec(log, delete(AuditEntry).where(AuditEntry.seq == 2))
    res = log.verify()
    assert [(p.kind, p.seq) for p in res.problems] == [("missing", 2)]


def test_truncated_tail_detected(log: AuditLog) -> None:
    _exec(log, delete(AuditEntry).where(AuditEntry.seq >= 5))
    res = log.verify()
    assert [(p.kind, p.seq) for p in res.problems] == [("truncated", 5)]


def test_forged_head_detected(log: AuditLog) -> None:
    _exec(log, update(Meta).where(Meta.key == "audit_head").values(value='{"seq": 1}'))
    assert [p.kind for p in log.verify().problems] == ["signature"]


def test_without_keys_tail_truncation_is_a_note(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    audit = AuditLog(db)
    audit.append("x", actor="a", actor_kind="cli")
    res = verify(db)
    assert res.ok and not res.signed and res.notes


def test_text_is_clipped_and_sanitized(log: AuditLog) -> None:
    rec = log.append("x", actor="evil\nINFO fake line" + "a" * 200, actor_kind="anonymous")
    assert "\n" not in rec.actor and len(rec.actor) == 64


def test_no_update_or_delete_code_paths() -> None:
    src = Path(__file__).parents[2] / "src" / "vigil" / "api" / "audit.py"
    code = src.read_text()
    assert "delete(AuditEntry" not in code and "update(AuditEntry" not in code
    assert ".delete(" not in code


def test_api_search_csv_and_verify(api: Api) -> None:
    c = api.admin()
    api.client().post("/api/auth/login", json={"username": "=cmd|' /C calc'!A0", "password": "x"})
    f = api.footage["cam1"]
    c.get(f"/api/cameras/cam1/playback.mp4?start={f.wall(0)}&end={f.wall(10)}")
    r = c.get("/api/audit?outcome=failed")
    recs = r.json()["records"]
    assert recs and all(x["outcome"] == "failed" for x in recs)
    r = c.get("/api/audit?camera=cam1&action=recording.view")
    assert r.json()["records"][0]["detail"] == {"start_us": f.wall(0), "end_us": f.wall(10)}
    page1 = c.get("/api/audit?limit=2").json()
    page2 = c.get(f"/api/audit?limit=2&cursor={page1['next_cursor']}").json()
    assert page1["records"][-1]["seq"] > page2["records"][0]["seq"]

    csv_resp = c.get("/api/audit/export.csv")
    assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    seqs = [int(r["seq"]) for r in rows]
    assert len(seqs) > 2 and seqs == sorted(seqs, reverse=True)
    evil = [r for r in rows if "calc" in r["actor"]]
    assert evil and evil[0]["actor"].startswith("'=")  # neutralised formula
    assert c.get("/api/audit/verify").json()["ok"] is True

    with api.index.db.session() as s:
        s.execute(text("UPDATE audit_log SET ip = '1.2.3.4' WHERE seq = 1"))
        s.commit()
    v = c.get("/api/audit/verify").json()
    assert v["ok"] is False and v["problems"][0] == {
        "kind": "modified",
        "message": "record content does not match its hash",
        "seq": 1,
    }
    bad = c.get("/api/audit?start=notatime")
    assert bad.status_code == 400 and error_of(bad)["code"] == "invalid_time"
