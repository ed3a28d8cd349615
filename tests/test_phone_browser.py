"""On a 390 × 844 phone: no page scrolls sideways, tables become cards, buttons fit a finger."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from clinic import demo
from clinic.models import Booking, Organisation, Referral, Visit
from clinic.models.bookings import DAY_CANCELLED
from clinic.models.referrals import HubService

from conftest import user

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
SIDEWAYS = """() => {
  const page = document.scrollingElement;
  const inner = [...document.querySelectorAll("main *")]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .filter(el => el.clientWidth > 1)  // text hidden for the eye but read out (1 px wide)
    .filter(el => getComputedStyle(el).overflowX !== "visible")
    .map(el => el.tagName.toLowerCase() + (el.className ? "." + el.className : ""));
  return {page: page.scrollWidth, inner: inner};
}"""


@pytest.fixture
def phone(new_page):
    def make(email: str):
        page = new_page(email)
        page.set_viewport_size(PHONE)
        return page

    return make


@pytest.fixture
def referral(demo_data, make_patient):
    doctor = user("doctor@jinzhou.demo")
    r = Referral.create_draft(
        doctor, make_patient(allergies="Penicillin", address="Flat 12A, 88 Harbour Road, Wan Chai"),
        to_org=Organisation.by_name(demo.HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"),
        reason="Chest pain on exertion for three weeks, worse on stairs",
    )  # fmt: skip
    r.submit(doctor)
    return r


@pytest.fixture
def booked_day(make_service_day, referral):
    day = make_service_day(capacity=2)
    slot = day.slots.first()
    Booking.book(user("nurse@jinzhou.demo"), slot, referral.patient, today=dt.date.today())
    today = dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date()
    Visit.check_in(referral.patient, None, today)
    return day


def assert_not_sideways(page, url: str) -> None:
    page.goto(url)
    found = page.evaluate(SIDEWAYS)
    assert found["page"] <= PHONE["width"], f"{url} scrolls sideways ({found['page']} px)"
    assert not found["inner"], f"{url}: a part scrolls sideways: {found['inner']}"


def test_no_page_scrolls_sideways_on_a_phone(phone, referral, booked_day):
    page = phone("nurse@jinzhou.demo")
    for url in ("/today", f"/service-days/{booked_day.id}", f"/patients/{referral.patient_id}",
                "/referrals/", f"/referrals/{referral.id}"):  # fmt: skip
        assert_not_sideways(page, url)
    page = phone("coordinator@hub.demo")
    for url in ("/today", "/referrals/", f"/referrals/{referral.id}"):
        assert_not_sideways(page, url)


def test_a_service_day_slot_table_stacks_labels_above_values(phone, booked_day):
    page = phone("nurse@jinzhou.demo")
    page.goto(f"/service-days/{booked_day.id}")
    row = page.locator("table.bookings tbody[id^=booking-] tr").first
    cells = row.locator("td")
    first, second = cells.nth(0).bounding_box(), cells.nth(1).bounding_box()
    assert second["y"] >= first["y"] + first["height"] - 1, "cells side by side, not stacked"
    label = cells.nth(1).evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Phone"', label


def test_move_buttons_fit_a_finger_on_a_phone(phone, referral, booked_day):
    page = phone("coordinator@hub.demo")
    page.goto("/referrals/")
    buttons = page.locator(f"#referral-{referral.id} .acts :is(a.btn, button)")
    page = phone("nurse@jinzhou.demo")
    page.goto(f"/service-days/{booked_day.id}")
    for group in (buttons, page.locator("table.bookings .acts button")):
        assert group.count() >= 1
        for i in range(group.count()):
            box = group.nth(i).bounding_box()
            assert box["width"] >= 44 and box["height"] >= 44, (group.nth(i).inner_text(), box)


CHIPS_OUTSIDE_THEIR_DAY = """() => [...document.querySelectorAll("table.calendar .sd-chip")]
  .filter(chip => chip.getBoundingClientRect().right >
                  chip.closest("td").getBoundingClientRect().right + 1)
  .map(chip => chip.textContent.trim())"""


def test_service_day_pages_fit_a_phone(phone, booked_day):
    booking = booked_day.bookings.first()
    Booking.update(call_reason=DAY_CANCELLED).where(Booking.id == booking.id).execute()
    page = phone("nurse@jinzhou.demo")
    for url in (f"/service-days/?month={booked_day.date:%Y-%m}", "/service-days/week",
                "/service-days/to-call", "/service-days/places"):  # fmt: skip
        assert_not_sideways(page, url)
    page.goto(f"/service-days/?month={booked_day.date:%Y-%m}")
    assert page.locator("table.calendar .sd-chip").count() >= 1
    assert page.evaluate(CHIPS_OUTSIDE_THEIR_DAY) == []
    # The day's title is still read out from the chip (it is only too wide to show).
    assert "Chronic" in page.locator("table.calendar .sd-chip").first.text_content()
    page.goto("/service-days/to-call")
    cells = page.locator("main table.cards tbody tr").first.locator("td")
    first, second = cells.nth(0).bounding_box(), cells.nth(1).bounding_box()
    assert second["y"] >= first["y"] + first["height"] - 1, "cells side by side, not stacked"


def test_desk_tables_become_cards_on_a_phone(phone, referral):
    """Admin lists, the audit and access logs and the drug catalogue: a row a card, not a
    table to scroll sideways."""
    hub = Organisation.by_name(demo.HUB_NAME)
    pages = {
        "admin@hub.demo": ("/admin/users", "/admin/audit", "/admin/organisations",
                           f"/admin/organisations/{hub.id}"),
        "doctor@jinzhou.demo": (f"/patients/{referral.patient_id}/access",),
        "pharmacist@hub.demo": ("/consultations/drugs", "/consultations/phrases"),
    }  # fmt: skip
    for email, urls in pages.items():
        page = phone(email)
        for url in urls:
            assert_not_sideways(page, url)
