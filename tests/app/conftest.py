"""Fixtures for the web app tests: an app on a fresh SQLite database per test, users, logged-in clients."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from breastapp import create_app
from breastapp.extensions import db
from breastapp.services import users

PASSWORD = "correct horse battery staple"


def overrides_for(tmp_path) -> dict:
    """Everything a test writes lives under its tmp_path; CSRF off unless a test turns it on."""
    return {
        "ENV_NAME": "testing",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "BROKER_DIR": str(tmp_path / "broker"),
        "MODELS_DIR": str(tmp_path / "models"),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": True,
    }


class FreshContextClient(FlaskClient):
    """Each request in its own app context, as in production.

    The tests keep an app context pushed to use `db.session`; without this, Flask would reuse that
    context for every request, and `g` (where Flask-Login caches the current user) would leak from one
    client's request into another's.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def make_app(tmp_path, monkeypatch):
    """A factory for apps with extra overrides (the schema is created from the tables)."""
    monkeypatch.setenv("BREASTAPP_INSTANCE_DIR", str(tmp_path / "instance"))
    for variable in ("DATABASE_URL", "BROKER_URL", "BREASTAPP_ENV", "BREASTAPP_SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)

    def build(**extra):
        app = create_app({**overrides_for(tmp_path), **extra})
        app.test_client_class = FreshContextClient
        with app.app_context():
            db.create_all()
        return app

    return build


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    def create(username: str, role: str = "radiologist", password: str = PASSWORD):
        user, _ = users.create(f"{username}@example.org", username, role, password)
        db.session.commit()
        return user

    return create


def login(client, username: str, password: str = PASSWORD):
    return client.post("/login", data={"login": username, "password": password})


@pytest.fixture
def radiologist(make_user):
    return make_user("rad1")


@pytest.fixture
def admin(make_user):
    return make_user("boss", role="admin")


@pytest.fixture
def rad_client(app, radiologist):
    client = app.test_client()
    assert login(client, "rad1").status_code == 302
    return client


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    assert login(client, "boss").status_code == 302
    return client


@pytest.fixture
def mias_png(shared_data):
    return (shared_data / "mini-mias" / "images" / "mdb001.png").read_bytes()


@pytest.fixture
def dicom_bytes(shared_data):
    return (shared_data / "dicom" / "MG1_JPLY.dcm").read_bytes()
