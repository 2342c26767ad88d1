"""The flask commands: create-user, set-role, deactivate-user, init-admin."""

from __future__ import annotations

import re

from breastapp.extensions import db
from breastapp.orm import User


def run(app, *args, env=None):
    return app.test_cli_runner().invoke(args=list(args), env=env)


def user(username) -> User:
    db.session.expire_all()
    return db.session.scalars(db.select(User).where(User.username == username)).one()


def test_create_user_prints_a_generated_password_once(app):
    result = run(app, "create-user", "ann@example.org", "--role", "radiologist")
    assert result.exit_code == 0, result.output
    password = re.search(r"password \(shown once\): (\S+)", result.output).group(1)
    assert user("ann").check_password(password)


def test_create_user_takes_the_password_from_the_environment(app):
    result = run(
        app,
        "create-user",
        "bob@example.org",
        "--username",
        "bobby",
        env={"BREASTAPP_USER_PASSWORD": "a long enough password"},
    )
    assert result.exit_code == 0 and "shown once" not in result.output
    assert user("bobby").check_password("a long enough password")
    duplicate = run(app, "create-user", "bob@example.org", "--password", "another long password")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_set_role_and_deactivate(app, radiologist, admin):
    assert run(app, "set-role", "rad1", "admin").exit_code == 0
    assert user("rad1").role == "admin"
    assert run(app, "deactivate-user", "rad1@example.org").exit_code == 0
    assert user("rad1").active is False
    assert run(app, "set-role", "nobody", "admin").exit_code != 0


def test_init_admin_is_idempotent(app):
    first = run(app, "init-admin", env={"BREASTAPP_ADMIN_PASSWORD": "the admin's password"})
    assert first.exit_code == 0 and "shown once" not in first.output
    admin = user("admin")
    assert admin.role == "admin" and admin.check_password("the admin's password")
    again = run(app, "init-admin", env={"BREASTAPP_ADMIN_PASSWORD": "a different password!"})
    assert again.exit_code == 0 and "already exists" in again.output
    assert user("admin").check_password("the admin's password")


def test_init_admin_generates_a_password_when_none_is_given(app, monkeypatch):
    monkeypatch.delenv("BREASTAPP_ADMIN_PASSWORD", raising=False)
    result = run(app, "init-admin")
    password = re.search(r"admin password \(shown once\): (\S+)", result.output).group(1)
    assert user("admin").check_password(password)
