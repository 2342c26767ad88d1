"""Flask commands: `flask --app app <command>` (or `--app wsgi`). Accounts and job maintenance.

Passwords are printed once when generated and never logged.
"""

from __future__ import annotations

import os

import click
from flask import Flask, current_app
from sqlalchemy import select

from breastapp.extensions import db
from breastapp.orm import ROLE_ADMIN, ROLES, STATUS_QUEUED, Analysis
from breastapp.services import audit, users


def register(app: Flask) -> None:
    for command in (create_user, set_role, deactivate_user, init_admin, requeue, run_analysis):
        app.cli.add_command(command)


def _require_user(login: str):
    user = users.find(login)
    if user is None:
        raise click.ClickException(f"no user {login!r}")
    return user


@click.command("create-user")
@click.argument("email")
@click.option("--username", help="defaults to the part of the e-mail before @")
@click.option("--role", type=click.Choice(ROLES), default="radiologist", show_default=True)
@click.option(
    "--password", envvar="BREASTAPP_USER_PASSWORD", help="or BREASTAPP_USER_PASSWORD; generated if absent"
)
def create_user(email, username, role, password):
    """Create a user; prints a generated password once."""
    try:
        user, used = users.create(email, username or email.split("@")[0], role, password)
    except users.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record(
        "cli.create_user", user_id=None, target_type="user", target_id=user.id, detail=f"role={role}"
    )
    db.session.commit()
    click.echo(f"created {role} {user.username} <{user.email}>")
    if not password:
        click.echo(f"password (shown once): {used}")


@click.command("set-role")
@click.argument("login")
@click.argument("role", type=click.Choice(ROLES))
def set_role(login, role):
    """Change a user's role (LOGIN is the e-mail or user name)."""
    user = _require_user(login)
    try:
        users.set_role(user, role)
    except users.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record("cli.set_role", user_id=None, target_type="user", target_id=user.id, detail=f"role={role}")
    db.session.commit()
    click.echo(f"{user.username} is now {role}")


@click.command("deactivate-user")
@click.argument("login")
def deactivate_user(login):
    """Deactivate a user and end their sessions."""
    user = _require_user(login)
    try:
        users.set_active(user, False)
    except users.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record("cli.deactivate_user", user_id=None, target_type="user", target_id=user.id)
    db.session.commit()
    click.echo(f"{user.username} is deactivated")


@click.command("init-admin")
def init_admin():
    """Create the first admin (BREASTAPP_ADMIN_PASSWORD, or a generated password printed once). Idempotent."""
    config = current_app.config
    existing = users.find(config["ADMIN_EMAIL"]) or users.find(config["ADMIN_USERNAME"])
    if existing is not None:
        click.echo(f"admin {existing.username} <{existing.email}> already exists; nothing changed")
        return
    password = os.environ.get("BREASTAPP_ADMIN_PASSWORD") or None
    try:
        user, used = users.create(config["ADMIN_EMAIL"], config["ADMIN_USERNAME"], ROLE_ADMIN, password)
    except users.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record("cli.init_admin", user_id=None, target_type="user", target_id=user.id)
    db.session.commit()
    click.echo(f"created admin {user.username} <{user.email}>")
    if not password:
        click.echo(f"admin password (shown once): {used}")


@click.command("requeue")
def requeue():
    """Send every queued analysis to the broker again (after a broker was wiped or unreachable)."""
    from breastapp.tasks.analysis import enqueue

    ids = list(db.session.scalars(select(Analysis.id).where(Analysis.status == STATUS_QUEUED)))
    failed = enqueue(ids)
    click.echo(f"requeued {len(ids) - len(failed)} analyses; {len(failed)} could not be sent")


@click.command("run-analysis")
@click.argument("analysis_id")
def run_analysis(analysis_id):
    """Run one analysis in this process (no worker needed): for debugging and recovery."""
    from breastapp.services import analysis

    outcome = analysis.run(analysis_id)
    click.echo(f"{outcome.analysis_id}: {outcome.status} {outcome.error_code or ''}".rstrip())
