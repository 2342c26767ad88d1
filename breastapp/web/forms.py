"""Flask-WTF forms: every form carries a CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, FloatField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from breastapp.constants import MODALITIES, VIEWS
from breastapp.orm import ROLES

VIEW_CHOICES = [("", "Unknown")] + [(v, v) for v in VIEWS]
LATERALITY_CHOICES = [("", "Unknown"), ("L", "Left"), ("R", "Right")]


def choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class LoginForm(FlaskForm):
    login = StringField("E-mail or user name", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class LogoutForm(FlaskForm):
    """Empty: logout is a POST carrying the CSRF token, so another site cannot log a user out."""


class UploadForm(FlaskForm):
    """The files themselves are read from request.files (several per field); this form checks the rest."""

    label = StringField(
        "Study label (optional — never a patient name or identifier)",
        validators=[Optional(), Length(max=120)],
    )
    modality = SelectField(
        "Modality for PNG/JPEG",
        choices=choices([("", "Decide from the file")] + [(m, m) for m in MODALITIES]),
        validators=[Optional()],
    )
    view = SelectField("View", choices=choices(VIEW_CHOICES), validators=[Optional()])
    laterality = SelectField("Laterality", choices=choices(LATERALITY_CHOICES), validators=[Optional()])
    spacing_mm = FloatField(
        "Pixel spacing (mm)",
        validators=[Optional(), NumberRange(min=0.01, max=2.0)],
        render_kw={"step": "0.01"},
    )


class CreateUserForm(FlaskForm):
    email = EmailField(
        "E-mail",
        validators=[
            DataRequired(),
            Regexp(r"^[^@\s]+@[^@\s]+$", message="not an e-mail address"),
            Length(max=254),
        ],
    )
    username = StringField("User name", validators=[DataRequired(), Length(min=2, max=64)])
    role = SelectField("Role", choices=choices([(r, r) for r in ROLES]))
    password = PasswordField(
        "Password (leave empty to generate one)", validators=[Optional(), Length(min=12, max=256)]
    )
