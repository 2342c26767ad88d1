"""The README's first command, scripts/run-local.sh, on the embedded defaults: SQLite and a file-system
broker under an instance folder, gunicorn and a real Celery worker process, no server to install.

The install step is skipped (BREASTAPP_SKIP_INSTALL=1: the test runs inside the venv it would build);
everything after it runs as a user would see it: database and admin account created, both processes
started, an upload analysed end to end, then Ctrl-C (SIGINT to the script) stops both processes.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time

import pytest

from tests.support.client import RadiologistClient
from tests.support.paths import REPO_ROOT, VENV_BIN
from tests.support.processes import ManagedProcess, free_port, wait_for_http, wait_until

MAMMOGRAM = "mdb028.png"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def start_run_local(weights_dir, work, port: int, password: str) -> ManagedProcess:
    """scripts/run-local.sh on the embedded defaults, its instance and uploads under `work`."""
    env = {
        "BREASTAPP_SKIP_INSTALL": "1",
        "BREASTAPP_VENV": str(VENV_BIN.parent),
        "BREASTAPP_INSTANCE_DIR": str(work / "instance"),
        "BREASTAPP_UPLOAD_DIR": str(work / "uploads"),
        "BREASTAPP_MODELS_DIR": str(weights_dir),
        "BREASTAPP_ADMIN_PASSWORD": password,
        "PORT": str(port),
    }
    for name in ("DATABASE_URL", "BROKER_URL", "BREASTAPP_ENV", "BREASTAPP_SECRET_KEY"):
        env[name] = ""  # the embedded defaults, whatever the calling shell has set
    return ManagedProcess("run-local", [str(REPO_ROOT / "scripts" / "run-local.sh")], env, work)


@pytest.fixture()
def run_local(weights_dir, tmp_path):
    port = free_port()
    password = secrets.token_urlsafe(18)
    script = start_run_local(weights_dir, tmp_path, port, password)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", script, timeout=120)
        script.wait_for_log(" ready.", timeout=120)  # the Celery worker
        # Its child loads the networks after fork: the timed upload below is the steady state.
        script.wait_for_log("engine warmed up in worker process", timeout=180)
        yield script, f"http://127.0.0.1:{port}", password, tmp_path
    finally:
        script.stop()


def test_run_local_analyses_an_upload_and_stops_on_ctrl_c(run_local, shared_data, output_dir):
    script, base_url, password, work = run_local
    assert (work / "instance" / "breastapp.sqlite3").is_file()
    client = RadiologistClient(base_url)
    client.login("admin", password)

    started = time.perf_counter()
    upload = client.upload(shared_data / "mini-mias" / "images" / MAMMOGRAM, modality="MG")
    status = client.wait_finished(upload.analysis_id, timeout=180)
    upload_to_result_s = time.perf_counter() - started
    assert status["status"] == "done", f"{status}\n{script.log_text()}"
    assert list((work / "instance" / "broker").rglob("*")), "the file-system broker carried the job"
    (output_dir / "run-local-upload-to-result.txt").write_text(
        f"{MAMMOGRAM}: upload to result {upload_to_result_s:.2f} s on the embedded defaults "
        f"(engine processing {status['processing_s']:.2f} s)\n"
    )

    os.kill(script.pid, signal.SIGINT)  # what Ctrl-C delivers to the script
    try:
        status = script.popen.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run-local.sh still running 60 s after SIGINT:\n{script.log_text()}")
    assert status == 130, script.log_text()
    # gunicorn, the worker and their children were all in the script's process group.
    wait_until(lambda: not group_alive(script.pid), timeout=60, what="gunicorn and the worker to exit")


def test_run_local_stops_the_worker_and_fails_when_the_web_server_cannot_start(weights_dir, tmp_path):
    """A port already taken: gunicorn exits, and the script takes the worker down and exits non-zero."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        script = start_run_local(weights_dir, tmp_path, taken.getsockname()[1], secrets.token_urlsafe(18))
        try:
            status = script.popen.wait(timeout=180)
        finally:
            script.stop()
    log = script.log_text()
    assert status not in (0, 130), log
    assert "a process ended" in log and "stopping the web server and the worker" in log, log
    assert not group_alive(script.pid), "the worker outlived the script"
