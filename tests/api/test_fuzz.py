"""Schemathesis fuzzes every operation of the OpenAPI document with valid administrator
credentials (an ``admin``-scoped bearer token, so a fuzzed logout or password change
cannot end the run) and must find no server error, only documented status codes and
content types.

Passes per operation (random identifiers almost never name a real camera, event or
export, and would only ever reach the 404 branch):

0. negative: data that violates the schema, which must be refused, never a 500;
1. everything generated;
2. path parameters fixed to real objects (camera ``cam1``, a real event, a finished
   export, a user, a token, the recorded range), the rest generated;
3. as 2, plus valid times in ``start``/``end``/``at``, the rest (limits, cursors,
   filters, bodies) generated.

One test drives all operations itself (Hypothesis ``@given`` over each operation's
strategy) because schemathesis' pytest fixture loader does not support the pytest in use;
failures of every operation are collected and reported together. Bounded to
``FUZZ_EXAMPLES`` examples per operation and pass: the whole run stays well under two
minutes.
"""

from __future__ import annotations

import re
import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.api.conftest import ADMIN, Api

FUZZ_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def _real_values(api: Api) -> tuple[dict[str, Any], dict[str, str]]:
    """(path parameters, query times) naming real objects of the test installation."""
    f = api.footage["cam1"]
    admin = api.admin()
    r = admin.post(
        "/api/exports",
        json={"camera": "cam1", "start": str(f.start_us), "end": str(f.wall(30)), "reason": "x"},
    )
    assert r.status_code == 202
    assert api.app.state.vigil.jobs.wait_idle(60)
    export_id = admin.get(f"/api/exports/{r.json()['id']}").json()["export_id"]
    tok = admin.post("/api/tokens", json={"name": "victim", "scopes": ["read"]}).json()["id"]
    path = {
        "camera": "cam1",
        "event_id": api.events["cam1"],
        "export_id": export_id,
        "username": "alice",
        "token_id": tok,
        "start_us": f.start_us,
        "end_us": f.end_us,
        "name": "manifest.json",
        "k": 0,
        "n": 0,
    }
    query = {"start": str(f.wall(10)), "end": str(f.wall(30)), "at": str(f.wall(12))}
    return path, query


def _runner(op: Any, explicit: dict[str, Any], checks: list[Any], headers: dict[str, str]) -> Any:
    """A Hypothesis test of one operation (a factory, so each closes over its own op)."""

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=op.as_strategy(**explicit))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    return run


def test_fuzz_finds_no_server_errors(api: Api) -> None:
    token = api.token(ADMIN, ["admin"], days=1)
    headers = {"Authorization": f"Bearer {token}"}
    real_path, real_query = _real_values(api)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api.app, headers=headers)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 30
    failures: dict[str, str] = {}
    started = time.monotonic()
    for op in operations:
        params = op.definition.raw.get("parameters", [])
        in_path = set(re.findall(r"\{(\w+)\}", op.path))
        in_query = {p["name"] for p in params if p.get("in") == "query"}
        fixed_path = {k: v for k, v in real_path.items() if k in in_path}
        fixed_query = {k: v for k, v in real_query.items() if k in in_query}
        # Pass 0: data that violates the schema (must be refused with a 4xx, never a 500).
        passes: list[dict[str, Any]] = [{"generation_mode": GenerationMode.NEGATIVE}, {}]
        if fixed_path:
            passes.append({"path_parameters": fixed_path})
        if fixed_query:
            passes.append({"path_parameters": fixed_path or None, "query": fixed_query})
        for n, explicit in enumerate(passes):
            run = _runner(op, explicit, [not_a_server_error] if n == 0 else CHECKS, headers)
            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # collect (schemathesis raises a BaseExceptionGroup)
                if n == 0 and isinstance(exc, Unsatisfiable):
                    continue  # nothing to negate in an operation without inputs
                label = f"{op.label} (pass {n})"
                failures[label] = f"{type(exc).__name__}: {str(exc)[:3000]}"
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert elapsed < 120, f"fuzzing took {elapsed:.0f} s"
