"""After an idle timeout, a move sent inline (htmx) from a list loses nothing: the browser goes
to the login page, which says why, and after logging in the move's form is back as typed."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from clinic import demo
from clinic.db import utcnow
from clinic.models import Organisation, Referral, UserSession, Visit
from clinic.models.referrals import HubService

from conftest import APPOINTMENT_YEAR, totp_code, user

pytestmark = pytest.mark.browser
COORDINATOR, NURSE = "coordinator@hub.demo", "nurse@jinzhou.demo"
LOGGED_OUT = "You were logged out after a time without activity."


def time_out(app):
    idle = app.config["SESSION_IDLE_MINUTES"] + 1
    UserSession.update(last_seen_at=utcnow() - dt.timedelta(minutes=idle)).execute()


def log_in_again(page, email: str):
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if user(email).has_second_factor:
        page.wait_for_url("**/login/code")
        page.get_by_label("Code").fill(totp_code(email))
        page.get_by_role("button", name="Continue").click()


def test_an_inline_accept_after_the_timeout_comes_back_after_login(
    app, new_page, demo_data, make_patient
):
    doctor = user("doctor@jinzhou.demo")
    referral = Referral.create_draft(
        doctor, make_patient(), to_org=Organisation.by_name(demo.HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
    )  # fmt: skip
    referral.submit(doctor)
    page = new_page(COORDINATOR)
    page.goto("/referrals/")
    row = page.locator(f"#referral-{referral.id}")
    row.get_by_role("link", name="Accept", exact=True).click()
    row.get_by_label("Appointment time").fill(f"{APPOINTMENT_YEAR}-12-01T09:30")
    row.get_by_label("Place").fill("Room 7, level 3")
    row.get_by_label("Instructions for the patient").fill("Bring your old ECGs")
    time_out(app)
    row.get_by_role("button", name="Accept").click()
    page.wait_for_url(f"**/login?next=/referrals/{referral.id}/accept")
    expect(page.get_by_role("status")).to_contain_text(LOGGED_OUT)
    log_in_again(page, COORDINATOR)
    page.wait_for_url(f"**/referrals/{referral.id}/accept")
    expect(page.get_by_role("status")).to_contain_text("What you had typed is back in the form")
    expect(page.get_by_label("Place")).to_have_value("Room 7, level 3")
    expect(page.get_by_label("Instructions for the patient")).to_have_value("Bring your old ECGs")
    expect(page.get_by_label("Appointment time")).to_have_value(f"{APPOINTMENT_YEAR}-12-01T09:30")
    assert Referral.get_by_id(referral.id).state == "submitted"  # nothing done behind their back
    page.get_by_role("button", name="Accept").click()
    page.wait_for_url(f"**/referrals/{referral.id}")
    assert Referral.get_by_id(referral.id).state == "accepted"


def test_a_queue_move_after_the_timeout_returns_to_the_queue_undone(
    app, new_page, demo_data, make_patient
):
    patient = make_patient(chinese_name="鍾大衛", english_name="CHUNG, Tai Wai")
    Visit.check_in(patient, None, dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date())
    page = new_page(NURSE)
    page.goto("/patients/queue")
    time_out(app)
    page.locator("#queue tr", has_text="鍾大衛").get_by_role("button", name="Call in").click()
    page.wait_for_url("**/login?next=/patients/queue")
    expect(page.get_by_role("status")).to_contain_text(LOGGED_OUT)
    expect(page.get_by_role("status")).to_contain_text("What you pressed was not done.")
    log_in_again(page, NURSE)
    page.wait_for_url("**/patients/queue")
    row = page.locator("#queue tr", has_text="鍾大衛")
    expect(row).to_contain_text("Waiting")
    assert Visit.get(Visit.patient == patient).state == "waiting"
