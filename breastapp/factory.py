"""`create_app`: the one place an application is assembled, as a list of small named steps.

No module builds an app at import time (app.py and wsgi.py are the entry points that call this).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask

from breastapp.config import REPO_ROOT, build_config, check_production
from breastapp.extensions import celery_init_app, csrf, db, limiter, login_manager, migrate

log = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app: config, folders, extensions, Celery, blueprints, errors, commands, checks."""
    instance_dir = Path(os.environ.get("BREASTAPP_INSTANCE_DIR") or REPO_ROOT / "instance")
    app = Flask(
        "breastapp",
        instance_path=str(instance_dir.resolve()),
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "static"),
    )
    register_config(app, config)
    register_folders(app)
    register_extensions(app)
    register_celery(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_security_headers(app)
    register_template_globals(app)
    register_commands(app)
    register_production_checks(app)
    return app


def register_config(app: Flask, overrides: dict | None) -> None:
    app.config.update(build_config(Path(app.instance_path), overrides))


def register_folders(app: Flask) -> None:
    """instance/, the broker's folders and uploads/ exist before anything writes there."""
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    Path(app.config["UPLOAD_DIR"]).mkdir(parents=True, exist_ok=True)
    options = app.config["CELERY"].get("broker_transport_options", {})
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)


def register_extensions(app: Flask) -> None:
    from breastapp import orm  # noqa: F401  (the tables must be known to the metadata and to Alembic)
    from breastapp.web.auth import load_user

    db.init_app(app)
    migrate.init_app(app, db, directory=app.config["MIGRATIONS_DIR"], render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user)


def register_celery(app: Flask) -> None:
    celery_init_app(app)
    import breastapp.tasks.analysis  # noqa: F401  (registers the task with the new Celery app)


def register_blueprints(app: Flask) -> None:
    from breastapp.web import admin, analyses, auth, health, studies

    for module in (auth, studies, analyses, admin, health):
        app.register_blueprint(module.blueprint)


def register_error_handlers(app: Flask) -> None:
    from breastapp.web.errors import register

    register(app)


def register_security_headers(app: Flask) -> None:
    """Nothing external may load: a strict Content-Security-Policy, no framing, no MIME sniffing."""

    @app.after_request
    def _headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


def register_template_globals(app: Flask) -> None:
    from breastapp import constants
    from breastapp.web import formatting

    app.jinja_env.globals.update(RESEARCH_BANNER=constants.RESEARCH_BANNER)
    formatting.register(app)


def register_commands(app: Flask) -> None:
    from breastapp.cli import register

    register(app)


def register_production_checks(app: Flask) -> None:
    """Fail fast in production (weak secret, missing weights, database behind the migrations)."""
    from breastapp.services.schema import revision_problem

    def database_check():
        with app.app_context():
            return revision_problem(app.config["MIGRATIONS_DIR"])

    check_production(app.config, database_check)
