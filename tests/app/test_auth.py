"""Login, logout, session invalidation, CSRF, rate limiting, cookie flags."""

from __future__ import annotations

import re

from breastapp.extensions import db
from breastapp.orm import AuditEvent
from breastapp.services import users
from tests.app.conftest import PASSWORD, login


def test_login_then_logout(client, radiologist):
    assert client.get("/studies").status_code == 302  # anonymous: to the login page
    response = login(client, "rad1@example.org")
    assert response.status_code == 302 and response.headers["Location"].endswith("/studies")
    assert client.get("/studies").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/studies").status_code == 302


def test_wrong_password_and_unknown_user_answer_alike(client, radiologist):
    wrong = login(client, "rad1", "not the password")
    unknown = login(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert b"Unknown user or wrong password." in wrong.data
    denied = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "login")).all()
    assert [event.allowed for event in denied] == [False, False]


def test_passwords_are_hashed_with_a_current_algorithm(radiologist):
    assert radiologist.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert PASSWORD not in radiologist.password_hash


def test_logout_invalidates_every_copy_of_the_session(app, radiologist):
    first = app.test_client()
    login(first, "rad1")
    stolen = app.test_client()
    stolen.set_cookie("session", first.get_cookie("session").value)
    assert stolen.get("/studies").status_code == 200
    first.post("/logout")
    assert stolen.get("/studies").status_code == 302  # the copied cookie no longer works


def test_deactivated_user_is_logged_out_and_cannot_log_in(app, rad_client, radiologist):
    users.set_active(radiologist, False)
    db.session.commit()
    assert rad_client.get("/studies").status_code == 302
    assert login(app.test_client(), "rad1").status_code == 401


def test_login_is_rate_limited(client, radiologist):
    statuses = [login(client, "rad1", "wrong password").status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    assert b"Too many attempts" in login(client, "rad1").data


def test_session_cookie_flags(client, radiologist):
    response = login(client, "rad1")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in tests; production turns it on


def test_secure_cookie_when_configured(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    with app.app_context():
        users.create("s@example.org", "secure", "radiologist", PASSWORD)
        db.session.commit()
    response = login(app.test_client(), "secure")
    assert "Secure" in response.headers["Set-Cookie"]


def csrf_token(html: bytes) -> str:
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1).decode()


def test_csrf_is_enforced_on_forms(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        users.create("c@example.org", "csrfuser", "radiologist", PASSWORD)
        db.session.commit()
    client = app.test_client()
    refused = client.post("/login", data={"login": "csrfuser", "password": PASSWORD})
    assert refused.status_code == 400 and b"reload the page" in refused.data
    token = csrf_token(client.get("/login").data)
    accepted = client.post("/login", data={"login": "csrfuser", "password": PASSWORD, "csrf_token": token})
    assert accepted.status_code == 302
    assert client.post("/logout").status_code == 400  # logout without a token is refused too
    assert client.post("/studies", data={}).status_code == 400


def test_open_redirects_are_ignored(client, radiologist):
    response = client.post("/login?next=//evil.example/", data={"login": "rad1", "password": PASSWORD})
    assert response.headers["Location"].endswith("/studies")
