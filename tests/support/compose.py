"""Reading docker-compose.yml the way Docker Compose would, for the tests (no Docker engine here).

Only what the tests need: YAML with merge keys (PyYAML does those), `${VAR}`, `${VAR:-default}`,
`${VAR-default}` and `${VAR:?message}` interpolation, and compose's duration strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


class MissingVariable(ValueError):
    """A `${VAR:?message}` whose variable is unset: compose refuses to start, and says the message."""


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as plain Python data, merge keys (`<<: *anchor`) resolved, not yet interpolated."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def interpolate(value: str, environment: Mapping[str, str]) -> str:
    """Substitute compose's `${...}` forms in one string from `environment`."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        present = name in environment
        current = environment.get(name, "")
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if present else arg
        if op in (":?", "?"):
            if (op == ":?" and not current) or not present:
                raise MissingVariable(f"{name}: {arg}")
            return current
        return current

    return _VARIABLE.sub(substitute, value)


def service_environment(
    compose: dict[str, Any], service: str, environment: Mapping[str, str]
) -> dict[str, str]:
    """The service's `environment:` as compose would pass it to the container."""
    raw = compose["services"][service].get("environment") or {}
    if isinstance(raw, list):  # the `- KEY=value` form
        raw = dict(item.split("=", 1) for item in raw)
    return {key: interpolate(str(value), environment) for key, value in raw.items()}


def duration_seconds(text: str | int | float) -> float:
    """Compose's duration syntax ("330s", "5m30s", "1h") in seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a compose duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
