"""Template filters: dates, probabilities, sizes, hashes — formatted the same on every page."""

from __future__ import annotations

from datetime import datetime

VERDICT_LABELS = {
    "no_suspicious_lesion": "No suspicious lesion",
    "normal": "Normal",
    "benign": "Benign",
    "malignant": "Malignant",
}


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def mm(value: float | None, unit: str = "mm") -> str:
    return "—" if value is None else f"{value:.1f} {unit}"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def short_hash(value: str | None) -> str:
    return (value or "")[:12]


def verdict_label(value: str | None) -> str:
    return VERDICT_LABELS.get(value or "", value or "—")


def register(app) -> None:
    for function in (when, percent, mm, seconds, short_hash, verdict_label):
        app.jinja_env.filters[function.__name__] = function
