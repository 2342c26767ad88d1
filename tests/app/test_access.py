"""Radiologists see only their own studies; someone else's id answers exactly like a missing one."""

from __future__ import annotations

import re

import pytest

from breastapp.extensions import db
from breastapp.orm import AuditEvent
from tests.app.conftest import login
from tests.app.helpers import upload

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def owned(app, rad_client, mias_png):
    body = upload(rad_client, [("m.png", mias_png)], json_api=True).get_json()
    return body["study_id"], body["images"][0]["analysis_id"]


@pytest.fixture
def other_client(app, make_user):
    make_user("rad2")
    client = app.test_client()
    login(client, "rad2")
    return client


def _without_csrf_token(body: bytes) -> bytes:
    """The logout form's CSRF token carries a timestamp: two requests a second apart differ only there."""
    return re.sub(rb'name="csrf_token" value="[^"]*"', b'name="csrf_token" value=""', body)


def test_ids_are_random_uuids(owned):
    import uuid

    for value in owned:
        assert uuid.UUID(value).version == 4


@pytest.mark.parametrize(
    "template",
    [
        "/studies/{study}",
        "/analyses/{analysis}",
        "/analyses/{analysis}/status",
        "/analyses/{analysis}/files/overlay.png",
    ],
)
def test_other_users_ids_answer_like_missing_ids(owned, other_client, rad_client, template):
    study_id, analysis_id = owned
    theirs = other_client.get(template.format(study=study_id, analysis=analysis_id))
    missing = other_client.get(template.format(study=MISSING, analysis=MISSING))
    assert theirs.status_code == missing.status_code == 404
    assert _without_csrf_token(theirs.data) == _without_csrf_token(missing.data)
    assert rad_client.get(template.format(study=study_id, analysis=analysis_id)).status_code in (200, 404)


def test_owner_and_admin_see_the_study(owned, rad_client, admin_client):
    study_id, analysis_id = owned
    assert rad_client.get(f"/studies/{study_id}").status_code == 200
    assert admin_client.get(f"/studies/{study_id}").status_code == 200
    assert admin_client.get(f"/analyses/{analysis_id}").status_code == 200
    assert study_id in admin_client.get("/studies").get_data(as_text=True)


def test_list_shows_only_own_studies(owned, other_client, rad_client):
    study_id, _ = owned
    assert study_id in rad_client.get("/studies").get_data(as_text=True)
    assert study_id not in other_client.get("/studies").get_data(as_text=True)


def test_denied_access_is_audited(owned, other_client, make_user):
    _, analysis_id = owned
    other_client.get(f"/analyses/{analysis_id}")
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.allowed.is_(False))).one()
    assert (event.action, event.target_id) == ("view_result", analysis_id)
    assert (
        event.user_id
        == db.session.scalars(db.select(AuditEvent.user_id).where(AuditEvent.id == event.id)).one()
    )


def test_result_view_is_audited(owned, rad_client, radiologist):
    study_id, analysis_id = owned
    page = rad_client.get(f"/analyses/{analysis_id}")
    assert page.status_code == 200 and "queued" in page.get_data(as_text=True)
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "view_result")).one()
    assert (event.user_id, event.study_id, event.allowed) == (radiologist.id, study_id, True)


def test_status_json_reads_the_row(owned, rad_client):
    _, analysis_id = owned
    response = rad_client.get(f"/analyses/{analysis_id}/status")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["status"] == "queued" and response.get_json()["attempts"] == 0


@pytest.mark.parametrize(
    "path", ["/admin/history", "/admin/history.csv", "/admin/users", f"/admin/analyses/{MISSING}"]
)
def test_admin_pages_are_hidden_from_radiologists(rad_client, path):
    assert rad_client.get(path).status_code == 404
