"""CSRF on every unsafe request, security headers, no inline script, caching, size limits."""

import gzip
import re
from pathlib import Path

import pytest

from conftest import user

ROOT = Path(__file__).resolve().parent.parent
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def unsafe_routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & UNSAFE):
            url = rule.build({arg: 1 for arg in rule.arguments}, append_unknown=False)[1]
            yield method, url


def test_every_unsafe_request_without_a_csrf_token_is_refused(app, doctor):
    routes = list(unsafe_routes(app))
    assert len(routes) >= 3
    for method, url in routes:
        response = doctor.open(url, method=method, data={"x": "1"}, csrf=False)
        assert response.status_code == 400, (method, url, response.status_code)


def test_htmx_requests_pass_csrf_with_the_header_from_the_page(doctor):
    token = doctor.csrf_token()
    response = doctor.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 303


@pytest.mark.parametrize("path", ["/login", "/today", "/no-such-page", "/static/css/app.css"])
def test_every_response_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "http" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


def test_pages_are_never_stored_by_the_browser(doctor):
    assert doctor.get("/today").headers["Cache-Control"] == "no-store"


def test_session_cookie_is_httponly_and_samesite(client):
    cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_inline_script_or_event_handler_in_any_template():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for script in re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.S):
            assert script.strip() == "", f"inline script in {template}"
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"script without src in {template}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {template}"
        assert "hx-on" not in text and "js:" not in text, f"eval-needing htmx in {template}"


def test_htmx_is_configured_to_keep_nothing_and_evaluate_nothing(client):
    page = client.get("/login").get_data(as_text=True)
    config = re.search(r"name=\"htmx-config\" content='([^']+)'", page).group(1)
    assert '"historyCacheSize":0' in config
    assert '"allowEval":false' in config
    assert '{"code":"422","swap":true}' in config


def test_static_files_are_fingerprinted_and_cached_for_a_year(client):
    page = client.get("/login").get_data(as_text=True)
    for url in re.findall(r'(?:href|src)="(/static/[^"]+\?v=[0-9a-f]+)"', page):
        response = client.get(url)
        assert response.status_code == 200, url
        cache = {part.strip() for part in response.headers["Cache-Control"].split(",")}
        # Nothing that makes the browser revalidate (no-cache, no-store) on a fingerprinted URL.
        assert cache == {"public", "max-age=31536000", "immutable"}, (url, cache)
    assert "/static/vendor/htmx.min.js?v=" in page


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_static_files_are_sent_compressed_and_decompress_to_the_file(app, client, encoding):
    import brotli

    plain = client.get("/static/js/app.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    sent = client.get("/static/js/app.js", headers={"Accept-Encoding": encoding})
    assert sent.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in sent.headers["Vary"]
    unpack = brotli.decompress if encoding == "br" else gzip.decompress
    assert unpack(sent.data) == plain.data
    assert len(sent.data) < len(plain.data)


def test_htmx_is_served_locally_from_the_installed_package(client):
    body = client.get("/static/vendor/htmx.min.js").get_data(as_text=True)
    assert "htmx" in body and 'version:"2.' in body.replace(" ", "").replace("'", '"')


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_responses_are_compressed(client, encoding):
    response = client.get("/login", headers={"Accept-Encoding": encoding})
    assert response.headers["Content-Encoding"] == encoding


def test_oversized_requests_are_refused(client):
    response = client.post("/login", data={"email": "x" * 600_000, "password": "y"})
    assert response.status_code == 413


def test_secure_cookies_take_the_host_prefix(monkeypatch, app):
    from clinic import create_app

    from conftest import TEST_CONFIG, Client

    monkeypatch.setenv("SECURE_COOKIES", "1")
    secure = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["DATABASE_URL"]})
    secure.test_client_class = Client
    response = secure.test_client().get("/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-clinic_session=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("nurse@jinzhou.demo", "/patients/new"),
        ("doctor@jinzhou.demo", "/referrals/new?patient={patient}"),
        ("doctor@jinzhou.demo", "/patients/{patient}"),
    ],
)
def test_patient_consent_and_referral_forms_are_not_remembered(login, make_patient, who, url):
    patient = make_patient()
    page = login(who).get(url.format(patient=patient.id)).get_data(as_text=True)
    forms = [tag for tag in re.findall(r"<form[^>]*>", page) if 'method="post"' in tag]
    data_forms = [tag for tag in forms if "check-in" not in tag and "withdraw" not in tag]
    data_forms = [tag for tag in data_forms if "logout" not in tag and "language" not in tag]
    assert data_forms and all('autocomplete="off"' in tag for tag in data_forms), data_forms


def test_error_pages_and_refused_forms_are_compressed_too(client, nurse):
    """A 422 form is as large as a page and crosses the same slow link."""
    missing = client.get("/no-such-page", headers={"Accept-Encoding": "br"})
    assert (missing.status_code, missing.headers.get("Content-Encoding")) == (404, "br")
    refused = nurse.post(
        "/patients/new", data={"english_name": "CHAN"}, headers={"Accept-Encoding": "gzip"}
    )
    assert (refused.status_code, refused.headers.get("Content-Encoding")) == (422, "gzip")


@pytest.mark.parametrize("path", ["/static/js/app.js", "/static/css/app.css"])
def test_scripts_and_styles_are_compressed(client, path):
    response = client.get(path, headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == "br"


def test_fhir_json_is_compressed(doctor, make_patient):
    from clinic.demo import HUB_NAME
    from clinic.models import Organisation, Referral
    from clinic.models.referrals import HubService

    r = Referral.create_draft(
        user("doctor@jinzhou.demo"), make_patient(), to_org=Organisation.by_name(HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
    )  # fmt: skip
    response = doctor.get(f"/referrals/{r.id}/fhir", headers={"Accept-Encoding": "gzip"})
    assert response.mimetype == "application/fhir+json"
    assert response.headers.get("Content-Encoding") == "gzip"


def test_every_page_carries_its_icon_so_no_visit_asks_for_a_missing_one(client):
    page = client.get("/login").get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="data:image/svg\+xml,([^"]+)">', page)
    assert icon, "no <link rel=icon>: browsers ask for /favicon.ico and get a 404 page"
    assert "%3Csvg" in icon.group(1)
