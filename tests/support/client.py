"""A radiologist's HTTP conversation with a running web server, through `requests.Session`.

Logs in the way a browser does (the CSRF token comes from the login form), uploads with the
JSON answer of POST /studies, and polls the status endpoint, all through the public routes of
docs/CONTRACTS.md.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests

_CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
_VALUE = re.compile(r'value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The hidden csrf_token field of the (first) form on a page."""
    field = _CSRF_INPUT.search(html)
    assert field, "no csrf_token field on the page"
    value = _VALUE.search(field.group(0))
    assert value, "csrf_token field has no value"
    return value.group(1)


@dataclass
class Upload:
    study_id: str
    analysis_id: str
    answer: dict


class RadiologistClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self._csrf = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def login(self, login: str, password: str) -> requests.Response:
        form = self.session.get(self.url("/login"), timeout=10)
        form.raise_for_status()
        answer = self.session.post(
            self.url("/login"),
            data={"login": login, "password": password, "csrf_token": csrf_token(form.text)},
            timeout=10,
        )
        assert answer.status_code == 200 and "/login" not in answer.url, f"login failed: {answer.status_code}"
        return answer

    def upload(self, path: Path, modality: str = "MG", **fields: str) -> Upload:
        """POST one file to /studies as the upload page's form would, asking for the JSON answer."""
        page = self.session.get(self.url("/studies/new"), timeout=10)
        page.raise_for_status()
        with open(path, "rb") as handle:
            answer = self.session.post(
                self.url("/studies"),
                data={"csrf_token": csrf_token(page.text), "modality": modality, **fields},
                files=[("files", (path.name, handle, "application/octet-stream"))],
                headers={"Accept": "application/json"},
                timeout=60,
            )
        assert answer.status_code in (200, 201, 202), (
            f"upload answered {answer.status_code}: {answer.text[:500]}"
        )
        body = answer.json()
        assert not body["errors"], body["errors"]
        (image,) = body["images"]
        return Upload(body["study_id"], image["analysis_id"], body)

    def status(self, analysis_id: str) -> dict:
        answer = self.session.get(self.url(f"/analyses/{analysis_id}/status"), timeout=10)
        answer.raise_for_status()
        return answer.json()

    def wait_finished(self, analysis_id: str, timeout: float = 180.0) -> dict:
        """Poll the status endpoint as the result page does, until the analysis is done or failed."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(analysis_id)
            if status["status"] in ("done", "failed"):
                return status
            assert time.monotonic() < deadline, f"analysis still {status['status']} after {timeout:.0f} s"
            time.sleep(0.25)
