"""docker-compose.yml, the Dockerfile and the entrypoint say what the deployment promises.

There is no Docker engine on these machines, so the compose file is parsed (PyYAML, merge keys and
`${...}` interpolation as compose does them) and its promises are checked one by one; the stack test
then runs each service's command as a local process.
"""

from __future__ import annotations

import re

import pytest

from breastapp.config import ENVIRONMENT, build_config
from tests.support.compose import (
    COMPOSE_FILE,
    MissingVariable,
    duration_seconds,
    interpolate,
    load_compose,
    service_environment,
)
from tests.support.paths import ENTRYPOINT, REPO_ROOT

APP_SERVICES = ("migrate", "web", "worker")
HOST_ENV = {"BREASTAPP_SECRET_KEY": "x" * 48}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def env_of(compose: dict, service: str) -> dict[str, str]:
    return service_environment(compose, service, HOST_ENV)


def test_compose_has_the_five_services_and_named_volumes(compose):
    assert set(compose["services"]) == {"migrate", "web", "worker", "redis", "postgres"}
    assert {"uploads", "pgdata"} <= set(compose["volumes"])


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_share_one_image_and_pick_their_role(compose, service):
    spec = compose["services"][service]
    assert spec["image"] == compose["services"]["web"]["image"]
    assert spec["build"]["context"] == "."
    assert spec["command"] == [service]  # the role docker/entrypoint.sh dispatches on
    role_case = re.compile(rf"^\s+{service}\)$", re.MULTILINE)
    assert role_case.search(ENTRYPOINT.read_text()), f"docker/entrypoint.sh has no {service} role"


def test_web_and_worker_wait_for_the_one_shot_migration(compose):
    assert compose["services"]["migrate"]["restart"] == "no"
    for service in ("web", "worker"):
        depends = compose["services"][service]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert compose["services"]["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_worker_reserves_an_nvidia_gpu_and_runs_one_job_at_a_time(compose):
    worker = compose["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices)
    assert env_of(compose, "worker").get("WORKER_CONCURRENCY", "1") == "1"
    assert '--concurrency "${WORKER_CONCURRENCY:-1}"' in ENTRYPOINT.read_text()
    assert "--prefetch-multiplier 1" in ENTRYPOINT.read_text()


def test_worker_stop_grace_outlasts_the_hard_time_limit(compose):
    env = env_of(compose, "worker")
    soft, hard = int(env["BREASTAPP_TASK_SOFT_LIMIT_S"]), int(env["BREASTAPP_TASK_HARD_LIMIT_S"])
    assert soft < hard < duration_seconds(compose["services"]["worker"]["stop_grace_period"])


def test_app_config_accepts_the_compose_environment_and_outlasts_jobs_on_redis(compose, tmp_path):
    """The app's own config reader, fed the worker's environment: Redis redelivers after the hard limit."""
    config = build_config(tmp_path, environ=env_of(compose, "worker"))
    assert config["ENV_NAME"] == "production"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in config["SQLALCHEMY_DATABASE_URI"]
    assert config["BROKER_URL"].startswith("redis://redis:6379/")
    celery = config["CELERY"]
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"]
    assert celery["broker_transport_options"]["visibility_timeout"] > celery["task_time_limit"]


def test_every_app_variable_in_compose_is_one_the_code_reads(compose):
    entrypoint_variables = set(re.findall(r"\$\{([A-Z_]+)", ENTRYPOINT.read_text()))
    known = set(ENVIRONMENT) | entrypoint_variables | {"BREASTAPP_ADMIN_PASSWORD"}
    for service in APP_SERVICES:
        unknown = set(env_of(compose, service)) - known
        assert not unknown, f"{service} sets variables nothing reads: {sorted(unknown)}"


def test_secret_key_must_come_from_the_host(compose):
    with pytest.raises(MissingVariable, match="BREASTAPP_SECRET_KEY"):
        service_environment(compose, "web", {})


def test_uploads_are_shared_and_weights_mounted_read_only(compose):
    for service in APP_SERVICES:
        env = env_of(compose, service)
        volumes = [interpolate(volume, {}) for volume in compose["services"][service]["volumes"]]
        assert f"uploads:{env['BREASTAPP_UPLOAD_DIR']}" in volumes
        assert f"./models:{env['BREASTAPP_MODELS_DIR']}:ro" in volumes


def test_health_checks(compose):
    services = compose["services"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_redis_keeps_jobs_append_only_and_never_evicts(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_postgres_keeps_its_data_in_a_named_volume(compose):
    postgres = compose["services"]["postgres"]
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    web_url = env_of(compose, "web")["DATABASE_URL"]
    assert f"/{postgres['environment']['POSTGRES_DB']}" in web_url
    assert f"//{postgres['environment']['POSTGRES_USER']}:" in web_url


def test_dockerfile_builds_one_non_root_image_with_weights_inside():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile
    assert "COPY . ." in dockerfile
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "models" not in ignored and "models/" not in ignored, "weights must reach the image"
    assert {"uploads", "instance", ".venv"} <= set(ignored), "no runtime data or venv in the image"


def test_compose_file_interpolates_like_compose():
    assert interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("${A-x}", {"A": ""}) == ""
    assert interpolate("a${B}c", {"B": "b"}) == "abc"
    assert duration_seconds("5m30s") == 330
    assert COMPOSE_FILE.is_file()
