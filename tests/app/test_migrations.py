"""Alembic: exactly one head; upgrade from empty on SQLite and PostgreSQL; the tables match the migrations."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from breastapp.config import REPO_ROOT
from breastapp.extensions import db
from breastapp.services.schema import revision_problem

MIGRATIONS = str(REPO_ROOT / "migrations")
POSTGRES_ADMIN_URL = os.environ.get("BREASTAPP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def test_exactly_one_head():
    assert len(ScriptDirectory(MIGRATIONS).get_heads()) == 1


def upgrade_and_compare(app):
    """Upgrade from empty, check the tables match the ORM (no autogenerate diff), then down and up again."""
    with app.app_context():
        assert revision_problem(MIGRATIONS) is not None  # empty database: behind
        upgrade(directory=MIGRATIONS)
        assert revision_problem(MIGRATIONS) is None
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
        downgrade(directory=MIGRATIONS, revision="base")
        upgrade(directory=MIGRATIONS)
        db.engine.dispose()


def test_upgrade_on_sqlite(make_app_without_schema):
    upgrade_and_compare(make_app_without_schema())


@pytest.fixture
def make_app_without_schema(tmp_path, monkeypatch):
    from breastapp import create_app
    from tests.app.conftest import overrides_for

    monkeypatch.setenv("BREASTAPP_INSTANCE_DIR", str(tmp_path / "instance"))

    def build(**extra):
        return create_app({**overrides_for(tmp_path), **extra})

    return build


@pytest.fixture
def scratch_postgres():
    """A throw-away PostgreSQL database on this machine's server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"breastapp_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.services
def test_upgrade_on_postgresql(make_app_without_schema, scratch_postgres):
    app = make_app_without_schema(SQLALCHEMY_DATABASE_URI=scratch_postgres)
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    upgrade_and_compare(app)
