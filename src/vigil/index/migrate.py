"""Bring an index database's schema up to date, as a short-lived child process.

``python -m vigil.index.migrate`` reads the database URL from stdin (not from the argument
list: a PostgreSQL URL may carry a password, and every user can read argv), runs Alembic's
``upgrade head`` and exits 0, or prints the error as its last line on stderr and exits 1.
The recorder starts it through :func:`vigil.index.db.migrate` with ``isolated=True`` so that
Alembic, Mako and Pygments are never loaded into the long-running process.
"""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url

from vigil.index.db import create_db_engine, upgrade
from vigil.util.redact import redact_text, register_secret


def main() -> int:
    url = sys.stdin.read().strip()
    if not url:
        print("no database URL on stdin", file=sys.stderr)
        return 2
    register_secret(make_url(url).password or "")
    engine = create_db_engine(url)
    try:
        upgrade(engine)
    except Exception as exc:
        print(redact_text(f"{type(exc).__name__}: {exc}".replace("\n", " ")), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
