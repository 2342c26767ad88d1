"""Is the database at the latest migration? Asked at start-up in production and by /healthz."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from breastapp.extensions import db


def head_revisions(migrations_dir: str) -> set[str]:
    return set(ScriptDirectory(migrations_dir).get_heads())


def current_revisions() -> set[str]:
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def revision_problem(migrations_dir: str) -> str | None:
    """None when the database is at the head revision, else a sentence saying what to run."""
    try:
        current = current_revisions()
    except SQLAlchemyError as exc:
        return f"the database cannot be reached ({type(exc).__name__}); check DATABASE_URL"
    heads = head_revisions(migrations_dir)
    if current != heads:
        return (
            f"the database is at revision {sorted(current) or 'none'} but the code expects {sorted(heads)}; "
            "run `flask --app wsgi db upgrade`"
        )
    return None
