"""A real Celery worker process on this machine's Redis analyses a real upload into PostgreSQL.

The upload goes through the app's own POST /studies (Flask test client, CSRF on, production
configuration) in this process; the analysis runs in a separate `celery worker` process (prefork,
concurrency 1) fed through a Redis database of this test's own; the result is read back from the
scratch PostgreSQL database with plain SQL, not through the app.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from breastapp import create_app
from breastapp.config import sha256_file
from tests.support.client import csrf_token
from tests.support.processes import ManagedProcess, run_to_completion, wait_until
from tests.support.services import postgres_connect

pytestmark = pytest.mark.services

MALIGNANT_MASS = "mdb028.png"  # mini-MIAS: circumscribed malignant mass, 1024x1024 at 0.2 mm
VISIBILITY_TIMEOUT_S = 3  # the worker-loss test's Redis redelivery delay
WORKER_START_S = 180


@dataclass
class WorkerSetup:
    env: dict[str, str]  # what the worker processes get
    overrides: dict  # the same settings as config keys, for the in-process app that takes uploads
    admin_password: str
    database: str
    upload_dir: Path
    logs: Path
    weights_dir: Path


@pytest.fixture(scope="module")
def setup(backing_services, weights_dir, tmp_path_factory) -> WorkerSetup:
    """A migrated scratch database with an admin, and the settings both sides share."""
    work = tmp_path_factory.mktemp("worker")
    upload_dir, logs = work / "uploads", work / "logs"
    logs.mkdir()
    secret_key, admin_password = secrets.token_urlsafe(48), secrets.token_urlsafe(18)
    env = {
        "BREASTAPP_ENV": "production",
        "BREASTAPP_SECRET_KEY": secret_key,
        "DATABASE_URL": backing_services.database_url,
        "BROKER_URL": backing_services.broker_url,
        "BREASTAPP_UPLOAD_DIR": str(upload_dir),
        "BREASTAPP_MODELS_DIR": str(weights_dir),
        "BREASTAPP_ADMIN_PASSWORD": admin_password,
    }
    # The schema comes first; production's start-up check refuses a database behind the migrations.
    schema_env = env | {"BREASTAPP_ENV": "development"}
    run_to_completion("db-upgrade", ["flask", "--app", "app", "db", "upgrade"], schema_env, logs, timeout=180)
    run_to_completion("init-admin", ["flask", "--app", "app", "init-admin"], env, logs, timeout=120)
    overrides = {
        "ENV_NAME": "production",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": backing_services.database_url,
        "BROKER_URL": backing_services.broker_url,
        "UPLOAD_DIR": str(upload_dir),
        "MODELS_DIR": str(weights_dir),
        "SESSION_COOKIE_SECURE": False,  # the test client speaks plain HTTP
    }
    return WorkerSetup(
        env, overrides, admin_password, backing_services.database, upload_dir, logs, weights_dir
    )


def start_worker(
    setup: WorkerSetup, name: str, app: str = "wsgi:celery_app", **extra_env: str
) -> ManagedProcess:
    """`celery worker` as production runs it (prefork, one process, prefetch 1), ready to take jobs."""
    argv = [
        "celery",
        "-A",
        app,
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        "1",
        "--prefetch-multiplier",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"{name}@%h",
    ]
    worker = ManagedProcess(name, argv, setup.env | extra_env, setup.logs)
    worker.wait_for_log(" ready.", timeout=WORKER_START_S)
    return worker


def upload_through_the_app(setup: WorkerSetup, image: Path) -> str:
    """Log in and POST the file to /studies as the upload form does; return the new analysis id."""
    app = create_app(setup.overrides)
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    answer = client.post(
        "/login",
        data={
            "login": "admin",
            "password": setup.admin_password,
            "csrf_token": csrf_token(login_page),
        },
    )
    assert answer.status_code in (302, 303), f"login answered {answer.status_code}"
    upload_page = client.get("/studies/new").get_data(as_text=True)
    with open(image, "rb") as handle:
        answer = client.post(
            "/studies",
            data={"csrf_token": csrf_token(upload_page), "modality": "MG", "files": [(handle, image.name)]},
            headers={"Accept": "application/json"},
        )
    assert answer.status_code in (200, 201, 202), answer.get_data(as_text=True)[:500]
    body = answer.get_json()
    assert not body["errors"], body["errors"]
    return body["images"][0]["analysis_id"]


def analysis_row(database: str, analysis_id: str) -> dict:
    with postgres_connect(database) as connection:
        cursor = connection.execute(
            "SELECT status, attempts, verdict, processing_s, weights, error_code, error_message "
            "FROM analyses WHERE id::text = %s",
            (analysis_id,),
        )
        names = [column.name for column in cursor.description]
        row = cursor.fetchone()
        assert row is not None, f"no analysis {analysis_id} in PostgreSQL"
        return dict(zip(names, row, strict=True))


def lesion_count(database: str, analysis_id: str) -> int:
    with postgres_connect(database) as connection:
        return connection.execute(
            "SELECT count(*) FROM lesions WHERE analysis_id::text = %s", (analysis_id,)
        ).fetchone()[0]


def wait_for_status(
    setup: WorkerSetup,
    analysis_id: str,
    statuses: tuple[str, ...],
    timeout: float,
    worker: ManagedProcess,
    interval: float = 0.2,
) -> dict:
    return wait_until(
        lambda: (row := analysis_row(setup.database, analysis_id))["status"] in statuses and row,
        timeout,
        interval=interval,
        what=f"analysis {analysis_id} to be {'/'.join(statuses)}",
        logs=[worker],
    )


def test_worker_process_analyses_an_upload_into_postgresql(setup, shared_data):
    worker = start_worker(setup, "worker-e2e")
    try:
        analysis_id = upload_through_the_app(setup, shared_data / "mini-mias" / "images" / MALIGNANT_MASS)
        row = wait_for_status(setup, analysis_id, ("done", "failed"), 180, worker)
        assert row["status"] == "done", f"{row}\n{worker.log_text()}"
        assert row["attempts"] == 1
        assert row["verdict"] in ("no_suspicious_lesion", "benign", "malignant")
        assert row["processing_s"] > 0
        # The weights named in the row are the very files the worker loaded.
        recorded = {entry["name"]: entry["sha256"] for entry in row["weights"]}
        assert recorded["mg_seg_unet"] == sha256_file(setup.weights_dir / "mg_seg_unet.keras")
        assert recorded["mg_cls"] == sha256_file(setup.weights_dir / "mg_cls.keras")
        # ...with how well each did when it was validated, read from its card by the worker
        from breastapp.ml.registry import read_card
        from breastapp.ml.validation_summary import validation_line

        for entry in row["weights"]:
            assert entry["validation"] == validation_line(read_card(setup.weights_dir, entry["name"])) != ""
        # Result files sit beside the original, and the lesion rows match result.json's lesions.
        (result_json,) = setup.upload_dir.glob(f"*/{analysis_id}/result.json")
        assert {path.name for path in result_json.parent.iterdir()} >= {
            "overlay.png",
            "mask.png",
            "heatmap.png",
        }
        assert len(json.loads(result_json.read_text())["lesions"]) == lesion_count(
            setup.database, analysis_id
        )
    finally:
        worker.stop()


def test_job_of_a_killed_worker_is_finished_by_another(setup, shared_data):
    """SIGKILL the worker (and its pool process) mid-job: Redis redelivers, a second worker finishes it."""
    short_visibility = {
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "support"),
        "BREASTAPP_TEST_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
    }
    app = "short_visibility_app:celery_app"
    first = start_worker(setup, "worker-killed", app, **short_visibility)
    second = None
    try:
        analysis_id = upload_through_the_app(setup, shared_data / "mini-mias" / "images" / MALIGNANT_MASS)
        wait_for_status(setup, analysis_id, ("running", "done", "failed"), 120, first, interval=0.01)
        first.kill()
        row = analysis_row(setup.database, analysis_id)
        assert row["status"] == "running" and row["attempts"] == 1, f"not killed mid-job: {row}"

        time.sleep(VISIBILITY_TIMEOUT_S)
        second = start_worker(setup, "worker-rescue", app, **short_visibility)
        row = wait_for_status(setup, analysis_id, ("done", "failed"), 120, second)
        assert row["status"] == "done", f"{row}\n{second.log_text()}"
        assert row["attempts"] == 2
    finally:
        first.stop()
        if second is not None:
            second.stop()
