"""Fixtures of the stack and browser tests; each test folder's conftest imports them with `import *`.

`compose_stack` is docker-compose.yml without Docker: the migrate, worker and web services' commands
(docker/entrypoint.sh with the role) run as local processes with the services' own environment, where
only what names the compose network (database and broker hosts) and the container's paths is replaced
by this machine's Redis and PostgreSQL and temporary folders.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from breastapp.config import build_config, missing_weights, weights_names
from tests.support.compose import load_compose, service_environment
from tests.support.paths import REPO_ROOT
from tests.support.processes import ManagedProcess, entrypoint, free_port, run_to_completion, wait_for_http
from tests.support.services import postgres_url, require_services, scratch_postgres_database, scratch_redis_db

ADMIN_USERNAME = "admin"


@dataclass
class BackingServices:
    database: str  # scratch PostgreSQL database name
    database_url: str
    broker_url: str  # a Redis database of its own


@dataclass
class RunningStack:
    base_url: str
    admin_username: str
    admin_password: str
    services: BackingServices
    upload_dir: Path
    role_env: dict[str, dict[str, str]] = field(default_factory=dict)  # compose service -> its environment
    processes: dict[str, ManagedProcess] = field(default_factory=dict)


def engine_weights_names() -> list[str]:
    """The weights the engine loads under the default configuration."""
    return weights_names(build_config(REPO_ROOT / "instance", environ={}))


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """models/ when it holds every weights file the engine needs, else freshly initialised weights.

    Initialised weights make the engine run for real (and say "untrained weights" in each result);
    they are written once per test session into pytest's shared temporary folder.
    """
    names = engine_weights_names()
    if not missing_weights(REPO_ROOT / "models", names):
        return REPO_ROOT / "models"
    folder = tmp_path_factory.getbasetemp() / "initialised-weights"
    if missing_weights(folder, names):
        from breastapp.ml.registry import write_initialised_weights

        folder.mkdir(exist_ok=True)
        write_initialised_weights(folder, names=tuple(names))
    return folder


@pytest.fixture(scope="module")
def backing_services() -> Iterator[BackingServices]:
    """A scratch PostgreSQL database and a Redis database number of this module's own."""
    require_services()
    with scratch_postgres_database() as database, scratch_redis_db() as broker_url:
        yield BackingServices(database, postgres_url(database), broker_url)


def compose_role_environment(
    role: str,
    services: BackingServices,
    weights: Path,
    upload_dir: Path,
    secret_key: str,
    admin_password: str,
) -> dict[str, str]:
    """What docker-compose gives `role`, with compose-network hosts and container paths swapped."""
    env = service_environment(load_compose(), role, {"BREASTAPP_SECRET_KEY": secret_key})
    env.update(
        DATABASE_URL=services.database_url,
        BROKER_URL=services.broker_url,
        BREASTAPP_UPLOAD_DIR=str(upload_dir),
        BREASTAPP_MODELS_DIR=str(weights),
        BREASTAPP_ADMIN_PASSWORD=admin_password,
        # Plain HTTP on loopback here; behind the production TLS proxy the cookie stays Secure.
        BREASTAPP_SESSION_COOKIE_SECURE="0",
    )
    return env


@pytest.fixture(scope="module")
def compose_stack(backing_services, weights_dir, tmp_path_factory) -> Iterator[RunningStack]:
    """migrate (one shot), then the worker and gunicorn, as docker-compose would start them."""
    work = tmp_path_factory.mktemp("stack")
    upload_dir, logs = work / "uploads", work / "logs"
    upload_dir.mkdir()
    logs.mkdir()
    secret_key, admin_password = secrets.token_urlsafe(48), secrets.token_urlsafe(18)

    def env_for(role: str) -> dict[str, str]:
        return compose_role_environment(
            role, backing_services, weights_dir, upload_dir, secret_key, admin_password
        )

    port = free_port()
    stack = RunningStack(
        f"http://127.0.0.1:{port}", ADMIN_USERNAME, admin_password, backing_services, upload_dir
    )
    stack.role_env = {role: env_for(role) for role in ("migrate", "worker", "web")}
    stack.role_env["web"] |= {"BREASTAPP_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}
    run_to_completion("migrate", entrypoint("migrate"), stack.role_env["migrate"], logs, timeout=180)
    try:
        worker_command = entrypoint("worker", "--hostname", f"stack-{port}@%h")
        stack.processes["worker"] = ManagedProcess("worker", worker_command, stack.role_env["worker"], logs)
        stack.processes["web"] = ManagedProcess("web", entrypoint("web"), stack.role_env["web"], logs)
        wait_for_http(f"{stack.base_url}/healthz", stack.processes["web"], timeout=90)
        stack.processes["worker"].wait_for_log(" ready.", timeout=120)
        yield stack
    finally:
        for process in stack.processes.values():
            process.stop()
