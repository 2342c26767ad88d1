"""Admin: prediction history (filters, sort, pages, CSV, summary) and user management."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from breastapp.extensions import db
from breastapp.orm import Analysis, AuditEvent, Image, Study, User
from breastapp.services import history
from breastapp.services.history import HistoryFilters

DAY0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def add_analysis(
    owner: User, day: int, modality="MG", status="done", verdict="benign", seconds=2.0, prob=0.3
):
    study = Study(owner_id=owner.id, created_at=DAY0 + timedelta(days=day))
    db.session.add(study)
    db.session.flush()
    image = Image(
        study_id=study.id,
        stored_name="x.png",
        sha256="0" * 64,
        size_bytes=1,
        format="PNG",
        modality=modality,
        rows=8,
        cols=8,
    )
    db.session.add(image)
    db.session.flush()
    done = status == "done"
    analysis = Analysis(
        image_id=image.id,
        user_id=owner.id,
        status=status,
        created_at=DAY0 + timedelta(days=day),
        verdict=verdict if done else None,
        image_malignancy_prob=prob if done else None,
        processing_s=seconds if done else None,
    )
    db.session.add(analysis)
    return analysis


@pytest.fixture
def seeded(app, radiologist, admin, make_user):
    other = make_user("rad2")
    rows = [
        add_analysis(radiologist, 0, verdict="benign", seconds=1.0, prob=0.2),
        add_analysis(radiologist, 1, verdict="malignant", seconds=3.0, prob=0.9),
        add_analysis(radiologist, 2, modality="US", verdict="normal", seconds=5.0, prob=0.1),
        add_analysis(other, 3, verdict="malignant", seconds=7.0, prob=0.8),
        add_analysis(other, 4, status="failed"),
        add_analysis(other, 5, status="queued"),
    ]
    db.session.commit()
    return {"rows": rows, "rad": radiologist, "other": other}


def ids(page):
    return [row.id for row in page.rows]


def test_newest_first_and_pagination(seeded):
    rows = seeded["rows"]
    first = history.query(HistoryFilters(), page=1, per_page=4)
    second = history.query(HistoryFilters(), page=2, per_page=4)
    assert first.total == 6 and first.pages == 2
    assert ids(first) + ids(second) == [a.id for a in reversed(rows)]


def test_filters(seeded):
    rad, rows = seeded["rad"], seeded["rows"]
    assert ids(history.query(HistoryFilters(user_id=rad.id))) == [rows[2].id, rows[1].id, rows[0].id]
    assert ids(history.query(HistoryFilters(modality="US"))) == [rows[2].id]
    assert ids(history.query(HistoryFilters(verdict="malignant"))) == [rows[3].id, rows[1].id]
    assert ids(history.query(HistoryFilters(status="failed"))) == [rows[4].id]
    in_range = HistoryFilters(date_from=date(2025, 3, 2), date_to=date(2025, 3, 3))
    assert ids(history.query(in_range)) == [rows[2].id, rows[1].id]


def test_sorting(seeded):
    rows = seeded["rows"]
    by_prob = history.query(HistoryFilters(status="done"), sort="-probability")
    assert ids(by_prob) == [rows[1].id, rows[3].id, rows[0].id, rows[2].id]
    fastest = history.query(HistoryFilters(status="done"), sort="processing_s")
    assert ids(fastest)[0] == rows[0].id
    assert ids(history.query(HistoryFilters(), sort="nonsense")) == ids(history.query(HistoryFilters()))


def test_summary_counts_and_median(seeded):
    everything = history.summary(HistoryFilters())
    assert everything.total == 6
    assert everything.verdict_counts == {"benign": 1, "malignant": 2, "normal": 1, "none": 2}
    assert everything.status_counts == {"done": 4, "failed": 1, "queued": 1}
    assert everything.median_processing_s == pytest.approx(4.0)  # median of 1, 3, 5, 7
    assert history.summary(HistoryFilters(user_id=seeded["rad"].id)).median_processing_s == pytest.approx(3.0)
    assert history.summary(HistoryFilters(status="queued")).median_processing_s is None


def test_history_page_and_csv(seeded, admin_client):
    page = admin_client.get("/admin/history?verdict=malignant&sort=-probability")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "median processing" in text and text.count("/admin/analyses/") == 2
    export = admin_client.get("/admin/history.csv?verdict=malignant")
    assert export.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert table[0][0] == "analysis_id" and len(table) == 3
    assert {row[0] for row in table[1:]} == {seeded["rows"][1].id, seeded["rows"][3].id}
    detail = admin_client.get(f"/admin/analyses/{seeded['rows'][1].id}")
    assert detail.status_code == 200 and "malignant" in detail.get_data(as_text=True).lower()
    actions = set(db.session.scalars(db.select(AuditEvent.action)))
    assert {"admin.history", "admin.export_csv", "admin.view_analysis"} <= actions


def test_admin_creates_user_and_sees_password_once(admin_client):
    response = admin_client.post(
        "/admin/users",
        data={"email": "new@example.org", "username": "newbie", "role": "radiologist", "password": ""},
    )
    assert response.status_code == 200
    assert 'id="new-password"' in response.get_data(as_text=True)
    assert 'id="new-password"' not in admin_client.get("/admin/users").get_data(as_text=True)
    user = db.session.scalars(db.select(User).where(User.username == "newbie")).one()
    assert user.role == "radiologist"
    event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "admin.create_user")).one()
    assert event.target_id == user.id and event.allowed


def test_admin_changes_role_and_deactivates(admin_client, radiologist):
    admin_client.post(f"/admin/users/{radiologist.id}", data={"action": "set_role", "role": "admin"})
    db.session.expire_all()
    assert db.session.get(User, radiologist.id).role == "admin"
    admin_client.post(f"/admin/users/{radiologist.id}", data={"action": "deactivate"})
    db.session.expire_all()
    assert db.session.get(User, radiologist.id).active is False


def test_last_admin_cannot_be_removed(admin_client, admin):
    response = admin_client.post(
        f"/admin/users/{admin.id}", data={"action": "deactivate"}, follow_redirects=True
    )
    assert "last active admin" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, admin.id).active
    denied = db.session.scalars(db.select(AuditEvent).where(AuditEvent.allowed.is_(False))).one()
    assert denied.action == "admin.deactivate"
