"""This machine's real Redis and PostgreSQL, as the worker, stack and browser tests use them.

Each test run gets its own scratch PostgreSQL database (created, then dropped with FORCE) and its own
Redis database number (claimed atomically, flushed afterwards), so runs side by side never see each
other's jobs and nothing is left behind.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import redis

REDIS_HOST = os.environ.get("BREASTAPP_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("BREASTAPP_TEST_REDIS_PORT", "6379"))
POSTGRES_HOST = os.environ.get("BREASTAPP_TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("BREASTAPP_TEST_POSTGRES_PORT", "5432"))
POSTGRES_USER = os.environ.get("BREASTAPP_TEST_POSTGRES_USER", "postgres")
# An existing database to connect to while creating and dropping the scratch ones.
POSTGRES_MAINTENANCE_DB = os.environ.get("BREASTAPP_TEST_POSTGRES_DB", "test")

_CLAIM_KEY = "breastapp:test-run-claim"
_CLAIM_TTL_S = 3 * 3600


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_services() -> None:
    """Skip (or, in CI, fail) when Redis or PostgreSQL is not listening: scripts/test.sh starts them."""
    missing = [
        f"{name} on {host}:{port}"
        for name, host, port in (
            ("Redis", REDIS_HOST, REDIS_PORT),
            ("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT),
        )
        if not port_open(host, port)
    ]
    if not missing:
        return
    message = f"{' and '.join(missing)} not reachable (scripts/test.sh starts them)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _maintenance_connection() -> psycopg.Connection:
    return psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname=POSTGRES_MAINTENANCE_DB,
        autocommit=True,
    )


def postgres_url(database: str) -> str:
    """SQLAlchemy URL (psycopg 3 driver) of a database on the test server."""
    return f"postgresql+psycopg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def postgres_connect(database: str) -> psycopg.Connection:
    """A plain psycopg connection, for reading what the app wrote without going through the app."""
    return psycopg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname=database, autocommit=True
    )


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its name, drop it (disconnecting whoever still holds it)."""
    name = f"breastapp_test_{secrets.token_hex(6)}"
    with _maintenance_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with _maintenance_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_redis_db() -> Iterator[str]:
    """Claim an empty Redis database number for this run, yield its URL, flush it afterwards."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    databases = int(client.config_get("databases").get("databases", 16))
    token = secrets.token_hex(8)
    for number in secrets.SystemRandom().sample(range(1, databases), databases - 1):
        candidate = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        # SET NX makes the claim atomic; an empty database means no other run is using it.
        if candidate.dbsize() == 0 and candidate.set(_CLAIM_KEY, token, nx=True, ex=_CLAIM_TTL_S):
            break
    else:
        raise RuntimeError(f"no free Redis database on {REDIS_HOST}:{REDIS_PORT} (all {databases} in use)")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        candidate.flushdb()
