"""Login, sessions kept on the server, logout, deactivation, rate limits, safe redirects."""

import datetime as dt
import re

import pytest

from clinic import demo
from clinic.db import utcnow
from clinic.models import AuditEvent, Organisation, Patient, UserSession

from conftest import TEST_CONFIG, Client, log_in, second_step, user


def test_login_lands_on_today_with_the_users_name(doctor):
    page = doctor.get("/today")
    assert page.status_code == 200
    assert "WONG Ka Yan" in page.get_data(as_text=True)


def test_pages_need_login(client):
    response = client.get("/today")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/today")


def test_unknown_user_and_wrong_password_get_identical_answers(client, demo_data):
    def page(email: str, password: str) -> tuple[int, str]:
        response = client.post("/login", data={"email": email, "password": password})
        # The CSRF token is signed with a timestamp; everything else must be the same.
        body = re.sub(r"[\w.-]{60,}", "TOKEN", response.get_data(as_text=True))
        return response.status_code, body.replace(email, "EMAIL")

    assert page("nobody@x.demo", "whatever-123") == page("doctor@jinzhou.demo", "wrong-123")
    assert page("nobody@x.demo", "x")[0] == 422
    assert AuditEvent.select().where(AuditEvent.action == "login_failed").count() == 3


def test_session_id_changes_at_login(client, demo_data):
    client.get("/login")
    before = client.get_cookie("clinic_session").value
    log_in(client, "nurse@jinzhou.demo")
    assert client.get_cookie("clinic_session").value != before
    assert UserSession.select().where(UserSession.ended_at.is_null()).count() == 1


def test_logout_ends_the_session_on_the_server(doctor):
    cookie = doctor.get_cookie("clinic_session").value
    assert doctor.post("/logout").status_code == 303
    # Replaying the old cookie (as a second server, or a copied cookie, would) gets nothing.
    doctor.set_cookie("clinic_session", cookie)
    assert doctor.get("/today").status_code == 302


def test_deactivation_takes_effect_on_the_next_request(doctor):
    user("doctor@jinzhou.demo").deactivate()
    assert doctor.get("/today").status_code == 302


def test_moving_a_user_to_another_organisation_logs_them_out(doctor):
    user("doctor@jinzhou.demo").move_to(Organisation.by_name("Huangge Family-Doctor Clinic"))
    assert doctor.get("/today").status_code == 302


def test_idle_session_times_out(app, doctor):
    idle = app.config["SESSION_IDLE_MINUTES"] + 1
    UserSession.update(last_seen_at=utcnow() - dt.timedelta(minutes=idle)).execute()
    assert doctor.get("/today").status_code == 302


def test_absolute_lifetime_ends_even_a_busy_session(app, doctor):
    hours = app.config["SESSION_MAX_HOURS"] + 1
    UserSession.update(created_at=utcnow() - dt.timedelta(hours=hours)).execute()
    assert doctor.get("/today").status_code == 302


def test_polling_does_not_keep_an_idle_session_alive(app, doctor):
    UserSession.update(last_seen_at=utcnow() - dt.timedelta(minutes=5)).execute()
    doctor.get("/today", headers={"X-Clinic-Poll": "1"})
    assert UserSession.get().last_seen_at < utcnow() - dt.timedelta(minutes=4)
    doctor.get("/today")
    assert UserSession.get().last_seen_at > utcnow() - dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_next_never_leaves_the_site(client, demo_data, target):
    response = client.post(
        f"/login?next={target}",
        data={"email": "doctor@jinzhou.demo", "password": "demo-pass-2026", "next": target},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/today"


def test_next_inside_the_site_is_followed(client, demo_data):
    response = client.post(
        "/login", data={"email": "admin@hub.demo", "password": "demo-pass-2026", "next": "/admin/"}
    )
    # Through the second step, the page asked for is still where the login lands.
    assert second_step(client, response, "admin@hub.demo").headers["Location"] == "/admin/"


def test_login_is_rate_limited(client, demo_data):
    for _ in range(10):
        client.post("/login", data={"email": "doctor@jinzhou.demo", "password": "guess-1234"})
    blocked = client.post("/login", data={"email": "doctor@jinzhou.demo", "password": "guess-1234"})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)


def test_htmx_request_after_expiry_redirects_the_whole_page(client):
    response = client.get("/today", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_rate_limit_is_shared_between_servers_through_redis(app):
    """Two app servers with REDIS_URL count login attempts together."""
    import uuid

    import redis

    from clinic import create_app

    storage = "redis://127.0.0.1:6379/15"
    prefix = uuid.uuid4().hex
    config = {
        **TEST_CONFIG,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "RATELIMIT_STORAGE_URI": storage,
        "LOGIN_ACCOUNT_LIMIT": "3 per 15 minutes",
        "RATELIMIT_KEY_PREFIX": prefix,
    }
    first, second = create_app(config), create_app(config)
    for server in (first, second):
        server.test_client_class = Client
    attempt = {"email": "nobody@x.demo", "password": "guess-1234"}
    for _ in range(3):
        assert first.test_client().post("/login", data=attempt).status_code == 422
    assert second.test_client().post("/login", data=attempt).status_code == 429
    # The count lives in Redis, where every server process sees it, not in process memory.
    assert redis.Redis.from_url(storage).keys(f"*{prefix}*")


def test_a_new_password_follows_the_one_password_rule(nurse):
    weak = {"current": demo.DEMO_PASSWORD, "new": "password1234", "confirm": "password1234"}
    refused = nurse.post("/password", data=weak)
    assert refused.status_code == 422
    assert "too common or too easy to guess" in refused.get_data(as_text=True)
    mine = "nurse@jinzhou.demo-2026"
    refused = nurse.post("/password", data=weak | {"new": mine, "confirm": mine})
    assert "Do not use your e-mail address" in refused.get_data(as_text=True)


def _time_out(app):
    idle = app.config["SESSION_IDLE_MINUTES"] + 1
    UserSession.update(last_seen_at=utcnow() - dt.timedelta(minutes=idle)).execute()


def test_after_a_timeout_the_form_sent_is_kept_and_comes_back_after_login(app, nurse):
    from test_patients import FORM

    nurse.get("/patients/new")
    _time_out(app)
    refused = nurse.post("/patients/new", data=FORM)
    assert refused.status_code == 302
    assert refused.headers["Location"] == "/login?next=/patients/new"
    login_page = nurse.get(refused.headers["Location"]).get_data(as_text=True)
    assert "You were logged out after a time without activity." in login_page
    assert "Please log in to continue." not in login_page
    # Kept on the server, never in the browser: the signed cookie carries no typed value.
    cookie = nurse.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert "陳美玲" not in str(app.session_interface.get_signing_serializer(app).loads(cookie))
    assert not Patient.select().where(Patient.chinese_name == "陳美玲").exists()
    back = nurse.post(
        "/login",
        data={
            "email": "nurse@jinzhou.demo",
            "password": demo.DEMO_PASSWORD,
            "next": "/patients/new",
        },
    )
    assert back.headers["Location"] == "/patients/new"
    form = nurse.get("/patients/new").get_data(as_text=True)
    assert "What you had typed is back in the form" in form
    for typed in ('value="陳美玲"', 'value="E364912(5)"', "Tai Koo Shing"):
        assert typed in form
    assert "陳美玲" not in nurse.get("/patients/new").get_data(as_text=True)  # once only


def test_a_kept_form_is_given_back_to_the_same_user_only(app, nurse, login):
    from test_patients import FORM

    _time_out(app)
    refused = nurse.post("/patients/new", data=FORM, headers={"HX-Request": "true"})
    assert refused.status_code == 401
    assert refused.headers["HX-Redirect"] == "/login?next=/patients/new"
    log_in(nurse, "doctor@jinzhou.demo")  # someone else sits down at the PC
    assert "陳美玲" not in nurse.get("/patients/new").get_data(as_text=True)
    other = login("nurse@jinzhou.demo")
    assert "陳美玲" not in other.get("/patients/new").get_data(as_text=True)  # no restore asked


def test_stay_logged_in_is_one_small_request(app, doctor):
    UserSession.update(last_seen_at=utcnow() - dt.timedelta(seconds=30)).execute()
    response = doctor.post("/keepalive")
    assert (response.status_code, response.data) == (204, b"")
    assert UserSession.get().last_seen_at > utcnow() - dt.timedelta(seconds=5)
    page = doctor.get("/today").get_data(as_text=True)
    assert 'id="idle-warning"' in page and "Stay logged in" in page
