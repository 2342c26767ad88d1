"""docker-compose.yml's services as local processes: migrate, then gunicorn and a Celery worker.

The services run their compose commands (docker/entrypoint.sh ROLE) with their compose environment
against this machine's Redis and PostgreSQL; a radiologist's HTTP client logs in, uploads a real
mini-MIAS mammogram, polls, and downloads what the result page links to.
"""

from __future__ import annotations

import json

import pytest
import requests

from breastapp.constants import RESEARCH_BANNER
from tests.support.client import RadiologistClient
from tests.support.processes import entrypoint, run_to_completion

pytestmark = pytest.mark.services

MALIGNANT_MASS = "mdb028.png"  # mini-MIAS: circumscribed malignant mass


@pytest.fixture(scope="module")
def finished_analysis(compose_stack, shared_data):
    """One real mammogram uploaded through HTTP and analysed by the worker."""
    client = RadiologistClient(compose_stack.base_url)
    client.login(compose_stack.admin_username, compose_stack.admin_password)
    upload = client.upload(shared_data / "mini-mias" / "images" / MALIGNANT_MASS, modality="MG")
    status = client.wait_finished(upload.analysis_id)
    return client, upload, status


def test_web_health_check_reaches_the_database(compose_stack):
    assert compose_stack.processes["web"].running() and compose_stack.processes["worker"].running()
    health = requests.get(f"{compose_stack.base_url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["database"] == "ok"


def test_migrate_role_runs_again_without_harm(compose_stack, tmp_path):
    """`docker compose up` runs the one-shot migrate service every time: a second run must succeed."""
    output = run_to_completion(
        "migrate-again", entrypoint("migrate"), compose_stack.role_env["migrate"], tmp_path, timeout=180
    )
    assert compose_stack.admin_password not in output, "the admin password is printed only when generated"
    client = RadiologistClient(compose_stack.base_url)
    client.login(compose_stack.admin_username, compose_stack.admin_password)  # unchanged by the second run


def test_upload_is_analysed_by_the_worker(finished_analysis, compose_stack):
    _client, _upload, status = finished_analysis
    worker_log = compose_stack.processes["worker"].log_text()
    assert status["status"] == "done", f"{status}\nworker log:\n{worker_log}"
    assert status["attempts"] == 1
    assert status["verdict"]
    assert status["processing_s"] > 0


def test_result_page_shows_banner_verdict_and_overlay(finished_analysis):
    client, upload, status = finished_analysis
    page = client.session.get(client.url(f"/analyses/{upload.analysis_id}"), timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert RESEARCH_BANNER in page.text
    assert f"/analyses/{upload.analysis_id}/files/overlay.png" in page.text


@pytest.mark.parametrize(
    ("kind", "content_type", "magic"),
    [
        ("overlay.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("mask.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("result.json", "application/json", b"{"),
    ],
)
def test_downloads_are_typed_and_never_cached(finished_analysis, kind, content_type, magic):
    client, upload, _status = finished_analysis
    answer = client.session.get(
        client.url(f"/analyses/{upload.analysis_id}/files/{kind}?download=1"), timeout=30
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith(content_type)
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert answer.content.startswith(magic)


def test_result_json_agrees_with_the_status_row(finished_analysis):
    client, upload, status = finished_analysis
    result = json.loads(
        client.session.get(client.url(f"/analyses/{upload.analysis_id}/files/result.json")).text
    )
    assert result["analysis_id"] == upload.analysis_id
    assert len(result["lesions"]) == status["lesion_count"]
    assert result["verdict"] == status["verdict"]
    assert result["disclaimer"] == RESEARCH_BANNER


def test_files_need_a_login(finished_analysis):
    client, upload, _status = finished_analysis
    url = client.url(f"/analyses/{upload.analysis_id}/files/overlay.png")
    anonymous = requests.get(url, timeout=10, allow_redirects=False)
    assert anonymous.status_code in (302, 401)
    assert b"PNG" not in anonymous.content
