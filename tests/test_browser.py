"""In a real browser: log in, navigation by role, language switching, logout."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_doctor_logs_in_sees_clinic_navigation_and_logs_out(new_page, demo_data):
    page = new_page("doctor@jinzhou.demo")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Today").is_visible()
    assert nav.get_by_role("link", name="Admin").count() == 0
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    assert page.get_by_text("You have logged out.").is_visible()
    page.goto("/today")
    assert "/login" in page.url


def test_admin_sees_admin_navigation_and_the_audit_log(new_page, demo_data):
    page = new_page("admin@hub.demo")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.wait_for_url("**/admin/audit")
    assert page.get_by_role("heading", name="Audit log").is_visible()
    assert page.get_by_role("cell", name="Logged in", exact=True).first.is_visible()


def test_language_switch_shows_traditional_then_simplified_chinese(new_page, demo_data):
    page = new_page("nurse@jinzhou.demo")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="今日").is_visible()
    assert page.locator("html").get_attribute("lang") == "zh-Hant-HK"
    page.get_by_role("button", name="简体中文").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="今日").is_visible()
    assert page.get_by_role("button", name="退出登录").is_visible()
    assert page.locator("html").get_attribute("lang") == "zh-Hans-CN"


def test_browser_language_chooses_the_login_page_script(new_page, demo_data):
    page = new_page(locale="zh-HK")
    page.goto("/login")
    assert page.get_by_role("heading", name="登入").is_visible()
    page = new_page(locale="zh-CN")
    page.goto("/login")
    assert page.get_by_role("heading", name="登录").is_visible()


def test_a_slow_action_shows_a_spinner_on_the_button_pressed(new_page, demo_data):
    page = new_page("admin@hub.demo")
    page.goto("/admin/audit")
    held = []
    page.route("**/admin/audit?*", lambda route: held.append(route))  # held until released
    button = page.locator("form.filters button")
    button.click()
    page.wait_for_timeout(600)
    spinner = "b => getComputedStyle(b, '::after').opacity"
    assert held and button.evaluate(spinner) == "1"
    assert button.is_disabled()  # pressing again while it runs sends nothing
    held[0].continue_()
    page.wait_for_function("() => !document.querySelector('form.filters.htmx-request')")
    assert button.evaluate("b => getComputedStyle(b, '::after').content") == "none"
    assert button.is_enabled()


def test_a_warm_page_load_asks_the_server_for_no_static_file(app, new_page, demo_data):
    """Fingerprinted CSS and scripts come from the browser's cache: no 304 round trip each."""
    from flask import request

    static_requests = []

    @app.before_request
    def count_static():
        if request.path.startswith("/static/"):
            static_requests.append(request.path)

    page = new_page()
    page.goto("/login")
    page.wait_for_load_state("load")
    assert len(static_requests) >= 3  # css, htmx, app.js fetched once, cold
    static_requests.clear()
    page.goto("/login")
    page.wait_for_load_state("load")
    page.get_by_label("Email").fill("nurse@jinzhou.demo")  # the page works from the cache
    assert static_requests == []


def test_hub_staff_enrol_two_step_sign_in_from_the_qr_page(new_page, runner):
    import pyotp

    runner.invoke(args=["create-org", "Harbour Hub", "--kind", "hub"])
    runner.invoke(
        args=["create-user", "desk@harbour.example", "--org", "Harbour Hub", "--role",
              "coordinator", "--password", "long-enough-pw"]
    )  # fmt: skip
    page = new_page()
    page.goto("/login")
    page.get_by_label("Email").fill("desk@harbour.example")
    page.get_by_label("Password").fill("long-enough-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/login/enrol")
    qr = page.locator("figure.qr svg")
    assert qr.is_visible() and qr.bounding_box()["width"] > 80  # drawn, though no script runs
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    assert page.locator(".recovery-codes li").count() == 10
    page.get_by_role("link", name="I have kept them: continue").click()
    page.wait_for_url("**/today")


def test_the_idle_timeout_is_announced_and_one_click_keeps_the_session(app, new_page, demo_data):
    import datetime as dt

    from clinic.db import utcnow
    from clinic.models import UserSession

    app.config["SESSION_IDLE_MINUTES"] = 0.25  # the page counts 12 s and warns for the last 6
    page = new_page("nurse@jinzhou.demo")
    warning = page.get_by_role("alert").filter(has_text="logged out in")
    expect(warning).to_be_hidden()
    expect(warning).to_contain_text("you will be logged out in 1 min", timeout=10_000)
    UserSession.update(last_seen_at=utcnow() - dt.timedelta(seconds=10)).execute()
    with page.expect_response("**/keepalive") as kept:
        warning.get_by_role("button", name="Stay logged in").click()
    assert kept.value.status == 204
    expect(warning).to_be_hidden()
    assert UserSession.get().last_seen_at > utcnow() - dt.timedelta(seconds=3)


def test_a_cold_visit_meets_no_missing_file(new_page, demo_data):
    """No favicon.ico 404 page (3 KB on a slow link) on every first visit."""
    page = new_page()
    answers = []
    page.on("response", lambda response: answers.append((response.url, response.status)))
    page.goto("/login")
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert answers and not [url for url, status in answers if status >= 400]
