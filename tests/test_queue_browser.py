"""The check-in queue in a real browser: undo a move, room for a finger on a phone."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from clinic.models import Visit

pytestmark = pytest.mark.browser
NURSE = "nurse@jinzhou.demo"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def waiting(demo_data, make_patient):
    patient = make_patient(chinese_name="鍾大衛", english_name="CHUNG, Tai Wai")
    Visit.check_in(patient, None, dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date())
    return patient


def row(page):
    return page.locator("#queue tr", has_text="鍾大衛")


def test_a_slip_of_the_finger_is_undone_in_place(new_page, waiting):
    page = new_page(NURSE)
    page.goto("/patients/queue")
    row(page).get_by_role("button", name="Mark as left").click()
    expect(row(page)).to_contain_text("Left")
    row(page).get_by_role("button", name="Back to waiting").click()
    expect(row(page)).to_contain_text("Waiting")
    expect(row(page).get_by_role("button", name="Call in")).to_be_visible()
    assert Visit.get(Visit.patient == waiting).state == "waiting"


def test_queue_buttons_fit_a_finger_and_leaving_stands_apart(new_page, waiting):
    page = new_page(NURSE)
    page.set_viewport_size(PHONE)
    page.goto("/patients/queue")
    call_in = row(page).get_by_role("button", name="Call in").bounding_box()
    left = row(page).get_by_role("button", name="Mark as left").bounding_box()
    for box in (call_in, left):
        assert box["width"] >= 44 and box["height"] >= 44, box
    same_line = abs(call_in["y"] - left["y"]) < 5
    gap = left["x"] - (call_in["x"] + call_in["width"]) if same_line else 24
    assert gap >= 16, f"only {gap} px between Call in and Mark as left"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the queue scrolls sideways ({width} px)"
