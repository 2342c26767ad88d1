"""Upload → rows → stored original → queued message; refusals per file with their 4xx status."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from breastapp.extensions import db
from breastapp.orm import Analysis, AuditEvent, Image, Study
from breastapp.services.storage import Storage
from tests.app.helpers import queued_messages, upload


def png_bytes(rows: int, cols: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((rows, cols), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_mini_mias_png_is_stored_byte_for_byte_and_queued(app, rad_client, radiologist, mias_png):
    response = upload(
        rad_client,
        [("Jane Doe mammogram.png", mias_png)],
        modality="MG",
        view="MLO",
        laterality="R",
        spacing_mm="0.2",
    )
    assert response.status_code == 303
    study = db.session.scalars(db.select(Study)).one()
    assert response.headers["Location"].endswith(f"/studies/{study.id}")
    image = db.session.scalars(db.select(Image)).one()
    assert (image.format, image.modality, image.view, image.laterality) == ("PNG", "MG", "MLO", "R")
    assert (image.rows, image.cols, image.size_bytes) == (1024, 1024, len(mias_png))
    assert (image.spacing_row_mm, image.spacing_col_mm) == (0.2, 0.2)
    path = Storage(app.config["UPLOAD_DIR"]).original_path(study.id, image.id, "PNG")
    assert path.read_bytes() == mias_png
    assert path.name == f"{image.id}.png"  # the client's name (here a patient's) is never used
    assert "Jane" not in str(list(path.parent.iterdir()))
    analysis = db.session.scalars(db.select(Analysis)).one()
    assert (analysis.status, analysis.attempts, analysis.user_id) == ("queued", 0, radiologist.id)
    # Only the id travels through the broker, JSON-encoded.
    assert queued_messages(app) == [{"task": "breastapp.analyze", "args": [analysis.id], "kwargs": {}}]
    audit = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "upload")).one()
    assert (audit.allowed, audit.study_id, audit.user_id) == (True, study.id, radiologist.id)


def test_dicom_tags_give_modality_view_and_laterality(rad_client, dicom_bytes):
    response = upload(
        rad_client, [("a.dcm", dicom_bytes)], json_api=True, modality="US", view="CC", laterality="R"
    )
    assert response.status_code == 201
    image = db.session.scalars(db.select(Image)).one()
    assert (image.format, image.modality, image.view, image.laterality) == ("DICOM", "MG", "MLO", "L")


def test_json_api_reports_accepted_and_refused_files(app, rad_client, mias_png):
    files = [
        ("good.png", mias_png),
        ("notes.txt", b"just some text, not an image"),
        ("cut.png", mias_png[:2000]),
    ]
    response = upload(rad_client, files, json_api=True)
    assert response.status_code == 415  # the first refusal's status
    body = response.get_json()
    assert [item["filename"] for item in body["images"]] == ["good.png"]
    assert [(e["filename"], e["code"]) for e in body["errors"]] == [
        ("notes.txt", "unsupported_format"),
        ("cut.png", body["errors"][1]["code"]),
    ]
    assert body["errors"][1]["code"] in ("corrupt_file", "truncated_pixel_data")
    assert all(error["message"] for error in body["errors"])
    assert len(queued_messages(app)) == 1  # the good file still went through
    denied = db.session.scalars(db.select(AuditEvent).where(AuditEvent.allowed.is_(False))).all()
    assert sorted(event.detail for event in denied) == sorted(e["code"] for e in body["errors"])


def test_an_icon_sized_image_is_refused_at_upload_with_its_size(app, rad_client):
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((1, 1), 200, np.uint8)).save(buffer, "PNG")
    response = upload(rad_client, [("icon.png", buffer.getvalue())], json_api=True)
    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    assert error["code"] == "image_too_small" and "1 x 1 pixels" in error["message"]
    assert queued_messages(app) == [] and db.session.scalars(db.select(Study)).all() == []


def test_html_refusals_are_listed_next_to_their_file(rad_client):
    response = upload(rad_client, [("report.pdf", b"%PDF-1.4 not an image")])
    assert response.status_code == 415
    page = response.get_data(as_text=True)
    assert "report.pdf" in page and "unsupported_format" in page
    assert db.session.scalars(db.select(Study)).all() == []  # nothing accepted: no study


def test_decoded_pixel_cap(make_app, mias_png):
    from tests.app.conftest import login

    app = make_app(MAX_PIXELS=500_000)
    with app.app_context():
        from breastapp.services import users

        users.create("p@example.org", "pixels", "radiologist", "correct horse battery staple")
        db.session.commit()
        client = app.test_client()
        login(client, "pixels")
        response = upload(client, [("big.png", mias_png)], json_api=True)
    assert response.status_code == 413
    assert response.get_json()["errors"][0]["code"] == "image_too_large"


def test_request_size_limit_renders_a_clear_413(make_app):
    from tests.app.conftest import login

    app = make_app(MAX_UPLOAD_MB=1)
    with app.app_context():
        from breastapp.services import users

        users.create("s@example.org", "sizer", "radiologist", "correct horse battery staple")
        db.session.commit()
        client = app.test_client()
        login(client, "sizer")
        response = upload(client, [("huge.png", b"\x89PNG" + bytes(2 * 2**20))])
        json_response = upload(client, [("huge.png", b"\x89PNG" + bytes(2 * 2**20))], json_api=True)
    assert response.status_code == 413
    assert "The upload is too large" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert json_response.status_code == 413 and json_response.get_json()["error"]["code"] == 413


def test_no_file_is_a_400(rad_client):
    response = upload(rad_client, [], json_api=True)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "no_files"


def test_too_many_files(make_app):
    from tests.app.conftest import login

    app = make_app(MAX_FILES_PER_STUDY=2)
    with app.app_context():
        from breastapp.services import users

        users.create("m@example.org", "many", "radiologist", "correct horse battery staple")
        db.session.commit()
        client = app.test_client()
        login(client, "many")
        response = upload(client, [(f"{i}.png", png_bytes(8, 8)) for i in range(3)], json_api=True)
    assert response.status_code == 413
    assert response.get_json()["errors"][0]["code"] == "too_many_files"


def test_upload_page_has_drop_zone_and_picker(rad_client):
    page = rad_client.get("/studies/new").get_data(as_text=True)
    assert 'id="dropzone"' in page and 'type="file"' in page and "multiple" in page
    assert "js/upload.js" in page and "http" not in page.split("<body>")[1].split("static")[0]
