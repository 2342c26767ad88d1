"""People who log in: radiologists see their own studies, admins see everything."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from breastapp.extensions import db
from breastapp.orm.types import UTCDateTime, new_uuid, utcnow, uuid_column_type

ROLE_RADIOLOGIST = "radiologist"
ROLE_ADMIN = "admin"
ROLES = (ROLE_RADIOLOGIST, ROLE_ADMIN)


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(uuid_column_type(), primary_key=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_RADIOLOGIST)
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the login cookie; rotated at logout so every copy of an old cookie stops working.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def set_password(self, password: str) -> None:
        """Hash with werkzeug's current default (scrypt); the plain password is never stored."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def rotate_session_token(self) -> None:
        self.session_token = new_session_token()

    def get_id(self) -> str:
        """What Flask-Login keeps in the session: the id AND the current session token."""
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"
