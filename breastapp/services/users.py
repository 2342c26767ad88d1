"""Accounts: creation, roles, deactivation, login checks. Shared by the admin page and the flask commands."""

from __future__ import annotations

import secrets

from sqlalchemy import func, or_, select

from breastapp.extensions import db
from breastapp.orm import ROLE_ADMIN, ROLES, User
from breastapp.orm.types import utcnow

MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message is shown to the admin."""


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def find(login: str) -> User | None:
    """A user by e-mail or user name (case-insensitive)."""
    login = login.strip().lower()
    return db.session.scalar(
        select(User).where(or_(func.lower(User.email) == login, func.lower(User.username) == login))
    )


def get(user_id: str) -> User | None:
    return db.session.get(User, user_id)


def create(email: str, username: str, role: str, password: str | None = None) -> tuple[User, str]:
    """Create a user; returns it and the password (generated if none given). Flushes, no commit."""
    email, username = email.strip().lower(), username.strip()
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if "@" not in email or not username:
        raise AccountError("an e-mail address and a user name are required")
    if find(email) or find(username):
        raise AccountError("a user with this e-mail or user name already exists")
    password = password or generate_password()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"passwords must have at least {MIN_PASSWORD_LENGTH} characters")
    user = User(email=email, username=username, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user, password


def set_role(user: User, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if user.role == ROLE_ADMIN and role != ROLE_ADMIN and _active_admin_count() <= 1:
        raise AccountError("the last active admin cannot lose the admin role")
    user.role = role
    user.rotate_session_token()  # a changed role takes effect at the next request


def set_active(user: User, active: bool) -> None:
    if not active and user.role == ROLE_ADMIN and user.active and _active_admin_count() <= 1:
        raise AccountError("the last active admin cannot be deactivated")
    user.active = active
    user.rotate_session_token()  # logs the user out everywhere


def authenticate(login: str, password: str) -> User | None:
    """The active user with these credentials, or None (same answer for unknown user and wrong password)."""
    user = find(login)
    if user is None or not user.active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    return user


def _active_admin_count() -> int:
    return db.session.scalar(
        select(func.count()).select_from(User).where(User.role == ROLE_ADMIN, User.active)
    )
