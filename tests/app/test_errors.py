"""Error pages: clean HTML or JSON, never a traceback; security headers on every answer."""

from __future__ import annotations

import pytest


def test_404_html_and_json(client):
    page = client.get("/nowhere")
    assert page.status_code == 404 and "There is nothing here." in page.get_data(as_text=True)
    api = client.get("/nowhere", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.get_json()["error"]["code"] == 404


def test_405(client):
    assert client.delete("/login").status_code == 405


def test_unexpected_errors_render_500_without_traceback(make_app):
    app = make_app()

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/boom")
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internal detail" not in text and "Traceback" not in text
    assert "Something went wrong" in text


@pytest.mark.parametrize("code", [400, 403, 422])
def test_other_codes_render_the_error_page(make_app, code):
    from flask import abort

    app = make_app()
    app.add_url_rule(f"/fail{code}", f"fail{code}", lambda: abort(code))
    response = app.test_client().get(f"/fail{code}")
    assert response.status_code == code and 'class="error-code"' in response.get_data(as_text=True)


def test_security_headers_and_no_external_assets(client):
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert "Research use only — not for clinical use" in html


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
