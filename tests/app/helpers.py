"""Helpers for the app tests: posting uploads, reading the embedded broker's queue."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path


def upload(client, files: list[tuple[str, bytes]], json_api: bool = False, **fields):
    """POST /studies with several files in the `files` field."""
    data = {key: value for key, value in fields.items()}
    data["files"] = [(io.BytesIO(content), name) for name, content in files]
    headers = {"Accept": "application/json"} if json_api else {}
    return client.post("/studies", data=data, content_type="multipart/form-data", headers=headers)


def queued_messages(app) -> list[dict]:
    """The Celery messages waiting in the filesystem broker's folder, decoded."""
    folder = Path(app.config["CELERY"]["broker_transport_options"]["data_folder_out"])
    messages = []
    for path in sorted(folder.glob("*.msg")):
        envelope = json.loads(path.read_text())
        body = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"task": envelope["headers"]["task"], "args": body[0], "kwargs": body[1]})
    return messages
