"""What verification found, in a form both people and programs can act on.

Storage verification and package verification share one report type so the CLI, the API and
tests all read the same thing: a list of problems, each naming *what* (the kind), *where*
(camera, file, chain position) and *why* (a sentence). An empty list means everything that
was checked held; ``checked`` says what was checked, so "OK" is never claimed for work that
was not done (for example signatures when no key store was available).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ProblemKind = Literal[
    # storage (verify_storage)
    "modified",  # content differs from the recorded hash, or a chain record's fields changed
    "missing",  # a chained segment is gone (file or row) without a tombstone
    "inserted",  # a file or row that is not part of the chain
    "reordered",  # a record or file sits at another chain position than where it was chained
    "signature",  # a signature that does not verify (chain head, tombstone, manifest)
    # packages (verify_package)
    "fingerprint",  # signed by a key other than the expected one
    "unsafe_path",  # a manifest names a file outside the package (rejected before any I/O)
    "missing_file",
    "extra_file",
    "manifest",  # manifest unreadable or structurally invalid
]


class EvidenceError(Exception):
    """Bad input or an impossible request (unknown camera, no footage, range too long...).

    Raised with a message meant for the operator, never a traceback-only condition."""


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    message: str
    camera: str | None = None
    path: str | None = None  # storage-relative path, or a file name inside a package
    seq: int | None = None  # chain position

    def __str__(self) -> str:
        where = []
        if self.camera is not None:
            where.append(f"camera={self.camera}")
        if self.seq is not None:
            where.append(f"seq={self.seq}")
        if self.path is not None:
            where.append(f"path={self.path}")
        loc = f" [{' '.join(where)}]" if where else ""
        return f"{self.kind.upper()}{loc}: {self.message}"


@dataclass(slots=True)
class Report:
    """Result of a verification. ``ok`` is true only when no problem was found."""

    subject: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # what was looked at, counted
    notes: list[str] = field(default_factory=list)  # caveats that are not failures
    fingerprint: str | None = None  # signing key fingerprint (packages)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    def of_kind(self, kind: ProblemKind) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def summary(self) -> str:
        """A human-readable multi-line summary (what the CLI prints)."""
        lines = [f"{self.subject}: {'OK' if self.ok else 'FAILED'}"]
        if self.fingerprint:
            lines.append(f"signing key fingerprint: {self.fingerprint}")
        if self.checked:
            lines.append(
                "checked: " + ", ".join(f"{k}={v}" for k, v in sorted(self.checked.items()))
            )
        lines.extend(f"  {p}" for p in self.problems)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
