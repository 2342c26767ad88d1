"""Configuration in three layers: defaults, then the environment, then the caller's overrides (tests).

Nothing here is read at import time: `build_config` runs inside `create_app`, so a test can set
environment variables or pass overrides before the first app exists. `check_production` is the
fail-fast gate that keeps a production process from starting with a weak secret, missing weights or a
database that is behind the migrations.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MIN_SECRET_KEY_LENGTH = 32
DEV_SECRET_KEY = "dev-only-secret-key-change-me-in-production"
ENVIRONMENTS = ("development", "production", "testing")


class ConfigError(RuntimeError):
    """The configuration would make the app unsafe or unable to work; the message says how to fix it."""


def defaults(instance_dir: Path) -> dict:
    """Embedded defaults: SQLite and a server-less broker under instance/; one machine needs nothing else."""
    return {
        "ENV_NAME": "development",
        "SECRET_KEY": DEV_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance_dir / 'breastapp.sqlite3'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BROKER_URL": "filesystem://",
        "BROKER_DIR": str(instance_dir / "broker"),
        "UPLOAD_DIR": str(REPO_ROOT / "uploads"),
        "MODELS_DIR": str(REPO_ROOT / "models"),
        "MIGRATIONS_DIR": str(REPO_ROOT / "migrations"),
        "MAX_UPLOAD_MB": 256,
        "MAX_FILES_PER_STUDY": 32,
        # Text fields only (files stream to disk); also bounds the multipart parser buffer, so keep it
        # well above werkzeug's 64 KiB read chunk.
        "MAX_FORM_MEMORY_SIZE": 1024 * 1024,
        "MAX_FORM_PARTS": 100,
        "MAX_PIXELS": 80_000_000,
        "MAX_DECODED_MB": 512,
        "TASK_SOFT_LIMIT_S": 600,
        "TASK_HARD_LIMIT_S": 660,
        "TASK_MAX_ATTEMPTS": 3,
        "MG_SEGMENTATION": ("mg_seg_unet",),  # see ml/engine.EngineSettings
        "MG_CLASSIFIER": "mg_cls",
        "US_SEGMENTATION": "us_seg_unet",
        "US_CLASSIFIER": "us_cls",
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOGIN_RATE_LIMIT": "10 per minute",
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,  # the CSRF token lives as long as the session
        "HISTORY_PER_PAGE": 50,
        "ADMIN_EMAIL": "admin@localhost",
        "ADMIN_USERNAME": "admin",
        "CHECK_PRODUCTION": True,
        "SKIP_MIGRATION_CHECK": False,  # set only by the one-shot migrate role, which brings the schema up
    }


# environment variable -> (config key, parser)
def _mb(value: str) -> int:
    return int(float(value))


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


ENVIRONMENT = {
    "BREASTAPP_ENV": ("ENV_NAME", str),
    "BREASTAPP_SECRET_KEY": ("SECRET_KEY", str),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
    "BROKER_URL": ("BROKER_URL", str),
    "BREASTAPP_BROKER_DIR": ("BROKER_DIR", str),
    "BREASTAPP_UPLOAD_DIR": ("UPLOAD_DIR", str),
    "BREASTAPP_MODELS_DIR": ("MODELS_DIR", str),
    "BREASTAPP_MAX_UPLOAD_MB": ("MAX_UPLOAD_MB", _mb),
    "BREASTAPP_MAX_FILES_PER_STUDY": ("MAX_FILES_PER_STUDY", int),
    "BREASTAPP_MAX_PIXELS": ("MAX_PIXELS", int),
    "BREASTAPP_MAX_DECODED_MB": ("MAX_DECODED_MB", _mb),
    "BREASTAPP_TASK_SOFT_LIMIT_S": ("TASK_SOFT_LIMIT_S", int),
    "BREASTAPP_TASK_HARD_LIMIT_S": ("TASK_HARD_LIMIT_S", int),
    "BREASTAPP_TASK_MAX_ATTEMPTS": ("TASK_MAX_ATTEMPTS", int),
    "BREASTAPP_MG_SEGMENTATION": ("MG_SEGMENTATION", _names),
    "BREASTAPP_MG_CLASSIFIER": ("MG_CLASSIFIER", str),
    "BREASTAPP_US_SEGMENTATION": ("US_SEGMENTATION", str),
    "BREASTAPP_US_CLASSIFIER": ("US_CLASSIFIER", str),
    "BREASTAPP_RATELIMIT_STORAGE_URI": ("RATELIMIT_STORAGE_URI", str),
    "BREASTAPP_LOGIN_RATE_LIMIT": ("LOGIN_RATE_LIMIT", str),
    "BREASTAPP_SESSION_COOKIE_SECURE": ("SESSION_COOKIE_SECURE", _bool),
    "BREASTAPP_ADMIN_EMAIL": ("ADMIN_EMAIL", str),
    "BREASTAPP_ADMIN_USERNAME": ("ADMIN_USERNAME", str),
    "BREASTAPP_SKIP_MIGRATION_CHECK": ("SKIP_MIGRATION_CHECK", _bool),
}


def from_environment(environ: os._Environ | dict) -> dict:
    """The settings the environment gives, parsed; absent variables leave the defaults alone."""
    found = {}
    for variable, (key, parse) in ENVIRONMENT.items():
        raw = environ.get(variable)
        if raw not in (None, ""):
            try:
                found[key] = parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{variable}={raw!r} is not valid: {exc}") from exc
    return found


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way (postgres:// or postgresql://)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def build_config(instance_dir: Path, overrides: dict | None = None, environ=None) -> dict:
    """defaults -> environment -> overrides, then the values derived from them."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    config = defaults(instance_dir)
    config.update(from_environment(environ))
    config.update(overrides)
    if config["ENV_NAME"] not in ENVIRONMENTS:
        raise ConfigError(
            f"BREASTAPP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {config['ENV_NAME']!r}"
        )
    secure_chosen = "BREASTAPP_SESSION_COOKIE_SECURE" in environ or "SESSION_COOKIE_SECURE" in overrides
    if config["ENV_NAME"] == "production" and not secure_chosen:
        config["SESSION_COOKIE_SECURE"] = True  # production is served over HTTPS
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_MB"] * 2**20
    config["TESTING"] = config["ENV_NAME"] == "testing" or config.get("TESTING", False)
    if config["TASK_HARD_LIMIT_S"] <= config["TASK_SOFT_LIMIT_S"]:
        raise ConfigError("BREASTAPP_TASK_HARD_LIMIT_S must be longer than BREASTAPP_TASK_SOFT_LIMIT_S")
    config["CELERY"] = celery_settings(config)
    return config


def celery_settings(config: dict) -> dict:
    """Celery's own settings, derived from ours: reliability first (late acks, prefetch 1, ids in JSON)."""
    broker_url = config["BROKER_URL"]
    settings = {
        "broker_url": broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,  # the database row is the result
        "task_acks_late": True,  # a worker killed mid-job leaves the message to be redelivered
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # one heavy job per process at a time
        # Each child loads the networks in worker_process_init before reporting up (seconds on a GPU).
        "worker_proc_alive_timeout": 180,
        "task_soft_time_limit": config["TASK_SOFT_LIMIT_S"],
        "task_time_limit": config["TASK_HARD_LIMIT_S"],
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "task_always_eager": False,
    }
    if broker_url.startswith("filesystem://"):
        queue_dir = Path(config["BROKER_DIR"]) / "queue"
        settings["broker_transport_options"] = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(Path(config["BROKER_DIR"]) / "processed"),
            # kombu keeps its exchange table in ./control by default: keep it under the instance folder.
            "control_folder": str(Path(config["BROKER_DIR"]) / "control"),
            # The worker polls the folder; kombu's 1 s default adds up to a second to every result.
            "polling_interval": 0.2,
            "store_processed": False,
        }
    elif broker_url.startswith(("redis://", "rediss://")):
        # An unacknowledged message comes back after visibility_timeout: it must outlast the slowest job.
        settings["broker_transport_options"] = {
            "visibility_timeout": max(3600, 2 * config["TASK_HARD_LIMIT_S"])
        }
    return settings


def check_production(config: dict, database_revision_check) -> None:
    """Refuse to run in production with a weak secret, missing weights or an out-of-date database.

    `database_revision_check` is a callable returning None when the database is at the latest migration,
    or a sentence explaining what is wrong (the factory passes one bound to the live database).
    """
    if config["ENV_NAME"] != "production" or not config.get("CHECK_PRODUCTION", True):
        return
    problems = []
    secret = config.get("SECRET_KEY") or ""
    if len(secret) < MIN_SECRET_KEY_LENGTH or secret == DEV_SECRET_KEY:
        problems.append(
            f"BREASTAPP_SECRET_KEY must be a random string of at least {MIN_SECRET_KEY_LENGTH} characters "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    problems.extend(missing_weights(Path(config["MODELS_DIR"]), weights_names(config)))
    problems.extend(guide_mismatch(Path(config["MODELS_DIR"]), config))
    revision_problem = None if config["SKIP_MIGRATION_CHECK"] else database_revision_check()
    if revision_problem:
        problems.append(revision_problem)
    if problems:
        raise ConfigError("refusing to start in production:\n  - " + "\n  - ".join(problems))


def weights_names(config: dict) -> list[str]:
    """Every weights file the engine will load with this configuration."""
    names = list(config["MG_SEGMENTATION"])
    names += [config["MG_CLASSIFIER"], config["US_SEGMENTATION"], config["US_CLASSIFIER"]]
    return list(dict.fromkeys(names))


def missing_weights(models_dir: Path, names: list[str]) -> list[str]:
    """Sentences for each weights file that is absent, lacks its card, or does not match the card's sha256.

    Deliberately reads only files and hashes: the web process must never import TensorFlow.
    """
    problems = []
    for name in names:
        weights, card = models_dir / f"{name}.keras", models_dir / f"{name}.json"
        if not weights.is_file() or not card.is_file():
            problems.append(f"weights {name}: {weights} or its card {card} is missing")
            continue
        try:
            expected = json.loads(card.read_text())["sha256"]
        except (ValueError, KeyError) as exc:
            problems.append(f"weights {name}: card {card} is unreadable ({exc})")
            continue
        if sha256_file(weights) != expected:
            problems.append(f"weights {name}: {weights} does not match the sha256 in its card")
    return problems


def guide_mismatch(models_dir: Path, config: dict) -> list[str]:
    """A sentence when the ultrasound classifier reads another segmenter's maps than the one configured.

    A guided classifier (card `input.guide`) learnt from one network's lesion maps; fed another's, its
    probabilities mean nothing. That holds for a retrained network of the same name too, so when the card
    records the segmenter's sha256 the segmenter's card must carry the same one. Reads cards only (no
    TensorFlow in the web process).
    """
    classifier, segmenter = config["US_CLASSIFIER"], config["US_SEGMENTATION"]
    try:
        card = json.loads((models_dir / f"{classifier}.json").read_text())
        segmenter_card = json.loads((models_dir / f"{segmenter}.json").read_text())
    except (OSError, ValueError):
        return []  # a missing or unreadable card is already reported by missing_weights
    guide = (card.get("input") or {}).get("guide") or {}
    if not guide:
        return []
    if guide.get("segmenter") != segmenter:
        return [
            f"weights {classifier} was trained on the lesion maps of {guide.get('segmenter')}, but "
            f"BREASTAPP_US_SEGMENTATION is {segmenter}: set it to {guide.get('segmenter')}, or use a "
            f"classifier trained for {segmenter}"
        ]
    expected = guide.get("segmenter_sha256")
    if expected and segmenter_card.get("sha256") != expected:
        return [
            f"weights {classifier} was trained on the lesion maps of {segmenter} with sha256 "
            f"{expected[:12]}, but {segmenter} in the models folder has sha256 "
            f"{str(segmenter_card.get('sha256'))[:12]}: retrain {classifier} after {segmenter} "
            f"(python -m breastapp train {classifier}), or restore the matching {segmenter}"
        ]
    return []


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
