"""The referral letter and the back-referral printed on A4 (print media, the width inside the
page margins), as a reader of each language opens them."""

import datetime as dt

import pytest

from clinic import demo
from clinic.db import utcnow
from clinic.models import Organisation, Referral
from clinic.models.referrals import HubService

from conftest import user

pytestmark = pytest.mark.browser
A4_INSIDE_MARGINS = {"width": 688, "height": 974}  # 210 × 297 mm less 14 mm margins, 96 dpi
LANGUAGES = ("English", "繁體中文", "简体中文")
LAYOUT = """() => {
  const firstValue = t => document.querySelector(t + " td").getBoundingClientRect().left;
  const lastRow = [...document.querySelectorAll(".letter tr:last-child")].map(tr =>
    [...tr.children].map(cell => getComputedStyle(cell).borderBottomWidth));
  const dates = [...document.querySelectorAll(".letter .both")];
  return {
    aligned: Math.abs(firstValue(".letter-grid") - firstValue(".letter-body")) < 2,
    lastRowLines: lastRow.map(widths => new Set(widths).size),
    dates: dates.map(d => getComputedStyle(d.lastElementChild, "::before").content),
    unbroken: dates.every(d => [...d.children].every(
      s => getComputedStyle(s).whiteSpace === "nowrap")),
    documents: document.querySelectorAll(".letter-grid tr")[3].children[1].textContent.trim(),
    from: document.querySelector(".letter-grid td").textContent,
  };
}"""


@pytest.fixture
def signed(demo_data, make_patient):
    doctor = user("doctor@jinzhou.demo")
    r = Referral.create_draft(
        doctor, make_patient(), to_org=Organisation.by_name(demo.HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
        priority="urgent",
    )  # fmt: skip
    r.submit(doctor)
    r.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=2), "Cardiology 3/F")
    r = Referral.get_by_id(r.id)
    r.back_referral(
        user("specialist@hub.demo"), br_diagnosis="Stable angina",
        br_follow_up_due=dt.date.today() + dt.timedelta(days=90),
    )  # fmt: skip
    return r


def test_letters_print_both_languages_side_by_side_cleanly_on_a4(new_page, signed):
    page = new_page("doctor@jinzhou.demo")
    page.set_viewport_size(A4_INSIDE_MARGINS)
    letters = {"letter": "Jinzhou", "back-referral-letter": "Nansha Hub Hospital"}
    for language in LANGUAGES:
        page.emulate_media(media="screen")
        page.goto("/today")
        page.get_by_role("button", name=language).click()
        page.wait_for_load_state()
        for letter, sender in letters.items():
            page.goto(f"/referrals/{signed.id}/{letter}")
            page.emulate_media(media="print")
            seen = page.evaluate(LAYOUT)
            where = f"{letter} ({language})"
            assert sender in seen["from"], f"{where}: From is {seen['from']!r}"
            assert seen["aligned"], f"{where}: the values of the two tables do not line up"
            assert seen["lastRowLines"] == [1, 1], f"{where}: a line under half the last row"
            assert seen["dates"] and set(seen["dates"]) == {'"/ "'}, f"{where}: {seen['dates']}"
            assert seen["unbroken"], f"{where}: a date can break inside itself"
            assert seen["documents"] == "—", f"{where}: no identity document, an empty cell"
