"""Configuration layers and the production start-up gate."""

from __future__ import annotations

import json

import pytest
from flask_migrate import upgrade

from breastapp import create_app
from breastapp.config import (
    ConfigError,
    build_config,
    check_production,
    guide_mismatch,
    missing_weights,
    sha256_file,
)
from tests.app.conftest import overrides_for

STRONG_KEY = "k" * 48


def test_layers_defaults_then_environment_then_overrides(tmp_path):
    environ = {
        "BREASTAPP_MAX_UPLOAD_MB": "10",
        "BREASTAPP_TASK_MAX_ATTEMPTS": "5",
        "BROKER_URL": "redis://r:6379/0",
    }
    config = build_config(tmp_path, {"TASK_MAX_ATTEMPTS": 2}, environ=environ)
    assert config["MAX_CONTENT_LENGTH"] == 10 * 2**20  # environment over defaults
    assert config["TASK_MAX_ATTEMPTS"] == 2  # overrides over environment
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'breastapp.sqlite3'}"
    assert config["CELERY"]["broker_url"] == "redis://r:6379/0"


def test_database_url_uses_psycopg3(tmp_path):
    config = build_config(tmp_path, environ={"DATABASE_URL": "postgres://u@h:5432/db"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h:5432/db"


def test_celery_settings_are_reliable(tmp_path):
    config = build_config(tmp_path, environ={"BROKER_URL": "redis://localhost:6379/0"})
    celery = config["CELERY"]
    assert celery["task_serializer"] == "json" and celery["accept_content"] == ["json"]
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"] and celery["task_ignore_result"]
    assert celery["worker_prefetch_multiplier"] == 1
    assert celery["task_soft_time_limit"] < celery["task_time_limit"]
    assert celery["broker_transport_options"]["visibility_timeout"] > celery["task_time_limit"]


def test_embedded_broker_is_a_folder(tmp_path):
    celery = build_config(tmp_path, environ={})["CELERY"]
    assert celery["broker_url"] == "filesystem://"
    options = celery["broker_transport_options"]
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "broker" / "queue")


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="BREASTAPP_MAX_PIXELS"):
        build_config(tmp_path, environ={"BREASTAPP_MAX_PIXELS": "lots"})
    with pytest.raises(ConfigError, match="HARD_LIMIT"):
        build_config(
            tmp_path, environ={"BREASTAPP_TASK_SOFT_LIMIT_S": "100", "BREASTAPP_TASK_HARD_LIMIT_S": "50"}
        )
    with pytest.raises(ConfigError, match="BREASTAPP_ENV"):
        build_config(tmp_path, environ={"BREASTAPP_ENV": "staging"})


def test_production_cookies_are_secure_by_default(tmp_path):
    assert build_config(tmp_path, environ={"BREASTAPP_ENV": "production"})["SESSION_COOKIE_SECURE"] is True
    assert build_config(tmp_path, environ={})["SESSION_COOKIE_SECURE"] is False
    environ = {"BREASTAPP_ENV": "production", "BREASTAPP_SESSION_COOKIE_SECURE": "0"}
    assert build_config(tmp_path, environ=environ)["SESSION_COOKIE_SECURE"] is False


def write_fake_weights(models_dir, names):
    """Weights files with matching cards: the gate checks files and hashes, never loads TensorFlow."""
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (models_dir / f"{name}.keras").write_bytes(f"weights of {name}".encode())
        sha = sha256_file(models_dir / f"{name}.keras")
        (models_dir / f"{name}.json").write_text(json.dumps({"name": name, "sha256": sha}))


NAMES = ["mg_seg_unet", "mg_cls", "us_seg_unet", "us_cls"]


def test_missing_and_tampered_weights_are_named(tmp_path):
    write_fake_weights(tmp_path, NAMES[:3])
    (tmp_path / "mg_cls.keras").write_bytes(b"tampered")
    problems = missing_weights(tmp_path, NAMES)
    assert len(problems) == 2
    assert any("mg_cls" in p and "sha256" in p for p in problems)
    assert any("us_cls" in p and "missing" in p for p in problems)


def test_a_guided_classifier_must_get_the_maps_of_its_own_segmenter(tmp_path):
    guide = {"segmenter": "us_seg_unet", "segmenter_sha256": "a" * 64}
    (tmp_path / "us_cls.json").write_text(json.dumps({"input": {"guide": guide}}))
    for segmenter in ("us_seg_unet", "busi_unet_big"):
        (tmp_path / f"{segmenter}.json").write_text(json.dumps({"sha256": "a" * 64}))
    matched = {"US_CLASSIFIER": "us_cls", "US_SEGMENTATION": "us_seg_unet"}
    assert guide_mismatch(tmp_path, matched) == []
    (problem,) = guide_mismatch(tmp_path, {**matched, "US_SEGMENTATION": "busi_unet_big"})
    assert "trained on the lesion maps of us_seg_unet" in problem and "busi_unet_big" in problem
    (tmp_path / "us_cls.json").write_text(json.dumps({"input": {"size": 64}}))  # not guided: any segmenter
    assert guide_mismatch(tmp_path, {**matched, "US_SEGMENTATION": "busi_unet_big"}) == []


def test_a_guided_classifier_refuses_a_retrained_segmenter_of_the_same_name(tmp_path):
    guide = {"segmenter": "us_seg_unet", "segmenter_sha256": "a" * 64}
    (tmp_path / "us_cls.json").write_text(json.dumps({"input": {"guide": guide}}))
    (tmp_path / "us_seg_unet.json").write_text(json.dumps({"sha256": "b" * 64}))
    config = {"US_CLASSIFIER": "us_cls", "US_SEGMENTATION": "us_seg_unet"}
    (problem,) = guide_mismatch(tmp_path, config)
    assert "sha256 aaaaaaaaaaaa" in problem and "has sha256 bbbbbbbbbbbb" in problem
    assert "python -m breastapp train us_cls" in problem


def production(tmp_path, **extra):
    return {**overrides_for(tmp_path), "ENV_NAME": "production", **extra}


def test_production_refuses_weak_secret_missing_weights_and_old_database(tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTAPP_INSTANCE_DIR", str(tmp_path / "instance"))
    with pytest.raises(ConfigError) as refused:
        create_app(production(tmp_path, SECRET_KEY="short"))
    message = str(refused.value)
    assert "BREASTAPP_SECRET_KEY" in message
    assert "mg_seg_unet" in message
    assert "flask --app wsgi db upgrade" in message


def test_production_starts_when_everything_is_in_place(tmp_path, monkeypatch):
    monkeypatch.setenv("BREASTAPP_INSTANCE_DIR", str(tmp_path / "instance"))
    write_fake_weights(tmp_path / "models", NAMES)
    migrating = create_app(production(tmp_path, SECRET_KEY=STRONG_KEY, SKIP_MIGRATION_CHECK=True))
    with migrating.app_context():
        upgrade(directory=migrating.config["MIGRATIONS_DIR"])
    app = create_app(production(tmp_path, SECRET_KEY=STRONG_KEY))
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_check_is_skipped_outside_production(tmp_path):
    config = build_config(tmp_path, environ={})
    check_production(config, lambda: "never asked")  # development: no exception
