"""The audit log: who did what, to which camera, from where, and whether it was allowed.

**Append-only and hash-chained.** Every record stores the hash of the record before it
(``prev_hash``) and its own hash over all of its fields (``hash``). Editing a record
changes its hash; deleting one breaks the next record's ``prev_hash`` and leaves a hole in
``seq``. This module has no update and no delete: :meth:`AuditLog.append` is the only write.

**Signed head.** Someone able to write to the database could rewrite the whole chain from
the edited record on, or cut records off the end. When a :class:`~vigil.evidence.keys.
KeyStore` is available each append also stores a signature over the newest ``(seq,
hash)`` (``meta`` key ``audit_head``), written in the same transaction; without the
private key a rewritten or truncated chain no longer matches a valid signed head.
:func:`verify` reports all of these, naming the first bad record.

Records are written by the API (logins, views of live and recorded footage with their
range, exports, settings and account changes, refusals) and by the CLI (``vigil user``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.evidence.keys import KeyStore
from vigil.index.auth_models import AuditEntry
from vigil.index.db import Database
from vigil.index.models import Meta
from vigil.index.repository import now_us

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
Outcome = Literal["ok", "failed", "denied"]
ActorKind = Literal["user", "token", "cli", "system", "anonymous"]
_FIELDS = (
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
CSV_COLUMNS = (
    "seq",
    "time_utc",
    "at_us",
    "actor",
    "actor_kind",
    "action",
    "outcome",
    "camera",
    "target",
    "ip",
    "detail",
    "hash",
)
MAX_PAGE = 1000


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but ``hash`` itself."""
    return hashlib.sha256(_canonical({k: fields[k] for k in _FIELDS})).hexdigest()


def head_message(seq: int, chain_hash: str, signed_us: int) -> bytes:
    return b"vigil-audit-head\x00" + _canonical(
        {"seq": seq, "hash": chain_hash, "signed_us": signed_us}
    )


def _clip(text: str | None, limit: int) -> str:
    """Audit text comes partly from clients (attempted user names): bound it, and drop
    control characters so a record cannot fake extra lines in a log viewer."""
    if not text:
        return ""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return cleaned[:limit]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at_us: int
    actor: str
    actor_kind: str
    action: str
    outcome: str
    camera: str | None
    target: str
    ip: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at_us": self.at_us,
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "outcome": self.outcome,
            "camera": self.camera,
            "target": self.target,
            "ip": self.ip,
            "detail": self.detail,
            "hash": self.hash,
        }


def _record(row: AuditEntry) -> AuditRecord:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = {"unparsable": row.detail}
    return AuditRecord(
        seq=row.seq,
        at_us=row.at_us,
        actor=row.actor,
        actor_kind=row.actor_kind,
        action=row.action,
        outcome=row.outcome,
        camera=row.camera,
        target=row.target,
        ip=row.ip,
        detail=detail if isinstance(detail, dict) else {"value": detail},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@dataclass(frozen=True, slots=True)
class AuditProblem:
    kind: Literal["modified", "missing", "reordered", "truncated", "signature", "unsigned"]
    message: str
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "seq": self.seq}


@dataclass(slots=True)
class AuditVerification:
    """Result of :func:`verify`: ``ok`` only when no problem was found; ``notes`` are
    caveats (e.g. no signed head because no key store was configured)."""

    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    signed: bool = False
    problems: list[AuditProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "signed": self.signed,
            "problems": [p.to_json() for p in self.problems],
            "notes": list(self.notes),
        }


class AuditLog:
    """Appends to and reads the audit log of one database. Thread-safe; safe across
    processes (a concurrent append by another process collides on ``seq`` and retries)."""

    def __init__(self, db: Database, keys: KeyStore | None = None) -> None:
        self.db = db
        self.keys = keys
        self._lock = threading.Lock()

    def append(
        self,
        action: str,
        *,
        actor: str,
        actor_kind: ActorKind,
        outcome: Outcome = "ok",
        camera: str | None = None,
        target: str = "",
        ip: str = "",
        detail: dict[str, Any] | None = None,
        at_us: int | None = None,
    ) -> AuditRecord:
        """Append one record and return it. Never raises for content (text is clipped);
        raises only if the database is unusable, which callers treat as a failed request:
        an action that cannot be audited is not performed silently."""
        fields: dict[str, Any] = {
            "at_us": at_us if at_us is not None else now_us(),
            "actor": _clip(actor, 64) or "-",
            "actor_kind": actor_kind,
            "action": _clip(action, 64),
            "outcome": outcome,
            "camera": _clip(camera, 63) or None,
            "target": _clip(target, 256),
            "ip": _clip(ip, 64),
            "detail": _canonical(detail or {}).decode(),
        }
        for attempt in range(10):
            with self._lock, self.db.session() as s:
                last = s.execute(
                    select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
                ).first()
                seq = (last[0] + 1) if last is not None else 1
                full = {**fields, "seq": seq, "prev_hash": last[1] if last else GENESIS}
                full["hash"] = record_hash(full)
                row = AuditEntry(**full)
                s.add(row)
                try:
                    s.flush()
                    self._sign_head(s, seq, full["hash"])
                    s.commit()
                except IntegrityError:
                    s.rollback()  # another process took this seq: read the new head, retry
                    if attempt == 9:
                        raise
                    continue
                return _record(row)
        raise RuntimeError("unreachable")

    def _sign_head(self, s: Session, seq: int, chain_hash: str) -> None:
        if self.keys is None:
            return
        signed_us = now_us()
        key, sig = self.keys.sign(head_message(seq, chain_hash, signed_us))
        value = json.dumps(
            {
                "seq": seq,
                "hash": chain_hash,
                "signed_us": signed_us,
                "key_id": key.key_id,
                "signature": base64.b64encode(sig).decode(),
            }
        )
        row = s.get(Meta, HEAD_KEY)
        if row is None:
            s.add(Meta(key=HEAD_KEY, value=value))
        else:
            row.value = value

    # -- reads --------------------------------------------------------------------------------
    def search(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        camera: str | None = None,
        outcome: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> tuple[list[AuditRecord], int | None]:
        """Newest first. ``action`` matches exactly or, ending in ``.``/``*``, as a prefix
        (``export.*``). Returns (records, cursor for the next page or None)."""
        limit = max(1, min(int(limit), MAX_PAGE))
        q = select(AuditEntry)
        if actor is not None:
            q = q.where(AuditEntry.actor == actor)
        if action is not None:
            if action.endswith("*"):
                prefix = action[:-1]
                q = q.where(func.substr(AuditEntry.action, 1, len(prefix)) == prefix)
            else:
                q = q.where(AuditEntry.action == action)
        if camera is not None:
            q = q.where(AuditEntry.camera == camera)
        if outcome is not None:
            q = q.where(AuditEntry.outcome == outcome)
        if start_us is not None:
            q = q.where(AuditEntry.at_us >= start_us)
        if end_us is not None:
            q = q.where(AuditEntry.at_us < end_us)
        if before_seq is not None:
            q = q.where(AuditEntry.seq < before_seq)
        q = q.order_by(AuditEntry.seq.desc()).limit(limit + 1)
        with self.db.session() as s:
            rows = [_record(r) for r in s.scalars(q)]
        nxt = rows[limit - 1].seq if len(rows) > limit else None
        return rows[:limit], nxt

    def iter_all(self, batch: int = 500, **filters: Any) -> Iterator[AuditRecord]:
        """Every matching record, newest first, fetched in pages (for CSV export)."""
        cursor: int | None = None
        while True:
            rows, cursor = self.search(before_seq=cursor, limit=batch, **filters)
            yield from rows
            if cursor is None:
                return

    def verify(self) -> AuditVerification:
        return verify(self.db, self.keys)


def verify(db: Database, keys: KeyStore | None = None, batch: int = 1000) -> AuditVerification:
    """Walk the whole chain oldest first and report every inconsistency: a record whose
    hash does not match its content (``modified``), a hole in ``seq`` or a broken link
    (``missing``), and a signed head that does not match the newest record (``truncated``
    or ``signature``)."""
    res = AuditVerification()
    prev_hash = GENESIS
    expected_seq = 1
    last_seq = 0
    with db.session() as s:
        after = 0
        while True:
            rows = list(
                s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq > after)
                    .order_by(AuditEntry.seq)
                    .limit(batch)
                )
            )
            if not rows:
                break
            for row in rows:
                res.records += 1
                fields = {k: getattr(row, k) for k in _FIELDS}
                if row.seq != expected_seq:
                    res.problems.append(
                        AuditProblem(
                            "missing",
                            f"records {expected_seq}..{row.seq - 1} are missing",
                            seq=expected_seq,
                        )
                    )
                elif row.prev_hash != prev_hash:
                    res.problems.append(
                        AuditProblem(
                            "missing",
                            "link to the previous record is broken (a record before it was "
                            "removed or replaced)",
                            seq=row.seq,
                        )
                    )
                if record_hash(fields) != row.hash:
                    res.problems.append(
                        AuditProblem(
                            "modified", "record content does not match its hash", seq=row.seq
                        )
                    )
                prev_hash = row.hash
                expected_seq = row.seq + 1
                last_seq = row.seq
            after = rows[-1].seq
        head = s.get(Meta, HEAD_KEY)
    res.head_seq = last_seq
    res.head_hash = prev_hash
    if head is None:
        if res.records and keys is not None:
            res.problems.append(
                AuditProblem("signature", "the signed head of the audit log is missing")
            )
        elif res.records:
            res.notes.append("no signed head: truncation at the end cannot be detected")
        return res
    try:
        doc = json.loads(head.value)
        h_seq, h_hash, h_us = int(doc["seq"]), str(doc["hash"]), int(doc["signed_us"])
        key_id, sig = str(doc["key_id"]), base64.b64decode(doc["signature"])
    except (ValueError, KeyError, TypeError):
        res.problems.append(AuditProblem("signature", "the signed head is unreadable"))
        return res
    if keys is None:
        res.notes.append("no key store given: the head signature was not checked")
    elif not keys.verify(key_id, head_message(h_seq, h_hash, h_us), sig):
        res.problems.append(AuditProblem("signature", "the head signature does not verify"))
        return res
    else:
        res.signed = True
    if h_seq > last_seq:
        res.problems.append(
            AuditProblem(
                "truncated",
                f"the signed head is record {h_seq} but the log ends at {last_seq}",
                seq=last_seq + 1,
            )
        )
    elif h_seq < last_seq:
        res.problems.append(
            AuditProblem(
                "unsigned",
                f"records after {h_seq} were added without a signature",
                seq=h_seq + 1,
            )
        )
    elif h_hash != prev_hash:
        res.problems.append(
            AuditProblem("modified", "the newest record differs from the signed head", seq=last_seq)
        )
    return res


def _csv_cell(value: object) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a cell a client influenced (user
    names, targets) must not start with ``= + - @`` or a control character."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csv_rows(records: Iterator[AuditRecord]) -> Iterator[str]:
    """CSV text in chunks (header first), for a streaming download."""
    from datetime import UTC, datetime

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    for r in records:
        buf.seek(0)
        buf.truncate()
        t = datetime.fromtimestamp(r.at_us / 1e6, UTC).isoformat(timespec="microseconds")
        writer.writerow(
            [
                r.seq,
                t,
                r.at_us,
                _csv_cell(r.actor),
                r.actor_kind,
                _csv_cell(r.action),
                r.outcome,
                _csv_cell(r.camera),
                _csv_cell(r.target),
                _csv_cell(r.ip),
                _csv_cell(json.dumps(r.detail, sort_keys=True, ensure_ascii=False)),
                r.hash,
            ]
        )
        yield buf.getvalue()
