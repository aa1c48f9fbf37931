"""Opening the index database and bringing its schema up to date.

SQLite is the embedded default (WAL mode so readers such as `vigil status` never block the
recorder); PostgreSQL is the scale-out path. Both go through the same Alembic migrations, run
automatically at start-up, so an upgrade is "install the new version and start it".

Alembic (with Mako and Pygments, ~11 MB) is imported only when the schema is not at
:data:`HEAD_REVISION`: the usual start of an up-to-date database only reads
``alembic_version`` with plain SQLAlchemy. The recorder (``isolated=True``) runs even the
upgrade in a short child process (:mod:`vigil.index.migrate`), so the long-running process
never maps Alembic at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration in migrations/versions. Update it with every new migration:
# tests/index/test_db.py fails while it differs from Alembic's own head.
HEAD_REVISION = "0005"
MIGRATE_TIMEOUT = 600.0  # seconds a child process may take to upgrade the schema


class MigrationError(RuntimeError):
    """The schema could not be brought up to date; the message says why."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9) without loss; after a power cut
    # the last transactions may be lost, which start-up reconciliation repairs from the files.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def current_revisions(engine: Engine) -> set[str]:
    """The revisions in ``alembic_version``, read without Alembic (empty: no schema yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def upgrade(engine: Engine) -> None:
    """Run Alembic's ``upgrade head`` in this process."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def migrate(engine: Engine, *, isolated: bool = False) -> None:
    """Upgrade the schema to the newest revision (idempotent).

    Nothing to do (and Alembic not imported) when ``alembic_version`` already says
    :data:`HEAD_REVISION`. Otherwise Alembic upgrades in this process or, with
    ``isolated``, in a child process (an in-memory SQLite database is always upgraded
    here: a child cannot see it)."""
    if current_revisions(engine) == {HEAD_REVISION}:
        return
    url = engine.url
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if isolated and not in_memory:
        _migrate_in_child(url.render_as_string(hide_password=False))
        if current_revisions(engine) != {HEAD_REVISION}:
            raise MigrationError(f"schema still not at revision {HEAD_REVISION} after upgrading")
        return
    upgrade(engine)


def _child_env() -> dict[str, str]:
    """The environment for ``python -m vigil.index.migrate``: the child must import this
    very ``vigil`` package, so a source checkout on ``sys.path`` (not an installed
    package) is put first on ``PYTHONPATH``."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    if Path(root).name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _migrate_in_child(url: str) -> None:
    """``python -m vigil.index.migrate`` with the URL on stdin (argv is visible to every
    user in ps; a PostgreSQL URL may hold a password)."""
    try:
        res = subprocess.run(
            [sys.executable, "-m", "vigil.index.migrate"],
            input=url,
            capture_output=True,
            text=True,
            env=_child_env(),
            timeout=MIGRATE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MigrationError(f"schema upgrade took more than {MIGRATE_TIMEOUT:g} s") from None
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        raise MigrationError(lines[-1] if lines else f"migration exited with {res.returncode}")


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return set(current) == set(script.get_heads())


class Database:
    """An engine plus a session factory; one per process."""

    def __init__(self, url: str, *, run_migrations: bool = True, isolated: bool = False) -> None:
        """``isolated``: run a needed schema upgrade in a child process (see :func:`migrate`),
        for the long-running recorder."""
        self.url = url
        self.engine = create_db_engine(url)
        if run_migrations:
            migrate(self.engine, isolated=isolated)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def optimize(self) -> None:
        """Keep the query planner's statistics fresh. Without them SQLite mis-plans event
        searches over a large table (bench/web.py: 0.3-1.8 s instead of under 10 ms over
        1M events). A full ANALYZE (about 0.4 s on 1M events, run hourly): sampled
        statistics (``analysis_limit``) misled SQLite 3.40 into sorting every event of a
        camera, and ``PRAGMA optimize`` of 3.40 skips tables a fresh connection has not
        used. PostgreSQL's autovacuum does this by itself."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()

    def close(self) -> None:
        self.engine.dispose()
