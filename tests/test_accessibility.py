"""WCAG 2.1 AA as a test: axe-core on every main page and fragment state, in the three languages."""

import datetime as dt
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from clinic.models import Organisation, Referral, Visit
from clinic.models.referrals import HubService

from conftest import APPOINTMENT_YEAR, crawl, user

pytestmark = pytest.mark.browser
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
SERIOUS = ("serious", "critical")
LANGUAGES = {"en": "English", "zh-Hant-HK": "繁體中文", "zh-Hans-CN": "简体中文"}
axe = Axe()


def serious_violations(page) -> list[str]:
    results = axe.run(page, options=WCAG_AA).response
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in SERIOUS
    ]


def check(page, lang: str, where: str) -> list[str]:
    found = [f"{where}: {v}" for v in serious_violations(page)]
    if page.get_attribute("html", "lang") != lang:
        found.append(f"{where}: <html lang> is {page.get_attribute('html', 'lang')!r}")
    return found


def choose(page, lang: str) -> None:
    page.get_by_role("button", name=LANGUAGES[lang]).first.click()
    page.wait_for_load_state()


@pytest.fixture
def referral(demo_data, make_patient):
    doctor = user("doctor@jinzhou.demo")
    r = Referral.create_draft(
        doctor, make_patient(allergies="Penicillin"),
        to_org=Organisation.by_name(demo_data.HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
    )  # fmt: skip
    r.submit(doctor)
    return r


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_clinic_pages_have_no_serious_accessibility_violations(new_page, referral, lang):
    found = []
    page = new_page()
    page.goto("/login")
    choose(page, lang)
    found += check(page, lang, "login")
    page = new_page("doctor@jinzhou.demo")
    choose(page, lang)
    patient_id = referral.patient_id
    for url in (
        "/today",
        "/patients/?q=chan",
        "/patients/new",
        f"/patients/{patient_id}",
        "/patients/queue",
        "/referrals/",
        f"/referrals/{referral.id}",
        f"/referrals/new?patient={patient_id}",
        f"/referrals/{referral.id}/letter",
    ):
        page.goto(url)
        found += check(page, lang, url)
    # Fragment states: a refused registration (422) and an opened confirm step.
    page.goto("/patients/new")
    page.locator("#patient-form button.primary").click()
    page.locator(".form-error").wait_for()
    found += check(page, lang, "registration refused")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_hub_and_admin_pages_have_no_serious_accessibility_violations(new_page, referral, lang):
    found = []
    page = new_page("coordinator@hub.demo")
    choose(page, lang)
    for url in ("/today", "/referrals/", f"/referrals/{referral.id}"):
        page.goto(url)
        found += check(page, lang, url)
    page.goto("/referrals/")
    page.locator(f"#referral-{referral.id} a[href$='/accept']").first.click()
    page.locator(f"#referral-{referral.id} input[name=appointment_at]").wait_for()
    page.locator(f"#referral-{referral.id} input[name=appointment_at]").fill(
        f"{APPOINTMENT_YEAR}-12-01T09:30"
    )
    found += check(page, lang, "inline accept form")
    page = new_page("admin@hub.demo")
    choose(page, lang)
    for url in ("/admin/audit", "/admin/users"):
        page.goto(url)
        found += check(page, lang, url)
    assert not found, "\n".join(found)


@pytest.fixture
def waiting(make_patient):
    """A patient in today's check-in queue."""
    patient = make_patient(chinese_name="鍾大衛", english_name="CHUNG, Tai Wai")
    Visit.check_in(patient, None, dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date())
    return patient


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_fragment_states_after_htmx_swaps_have_no_serious_violations(
    new_page, referral, waiting, make_service_day, lang
):
    """What a page becomes after htmx swaps a region in: search results as one types, the
    queue after a move, a refused referral (422), a service day's booking form."""
    found = []
    page = new_page("doctor@jinzhou.demo")
    choose(page, lang)
    page.goto("/patients/")
    with page.expect_response("**/patients/"):
        page.locator("#q").press_sequentially("chan", delay=30)
    expect(page.locator("#search-results tbody tr").first).to_be_visible()
    found += check(page, lang, "search as you type")
    page.goto("/patients/queue")
    row = page.locator("#queue tr", has_text="鍾大衛")
    before = row.inner_text()
    row.locator("button.primary").click()
    expect(row).not_to_have_text(before)
    found += check(page, lang, "queue after a move")
    page.goto(f"/referrals/new?patient={waiting.id}")
    page.locator("#referral-form button.primary").click()
    page.locator("#referral-form .form-error").wait_for()
    found += check(page, lang, "referral refused")
    day = make_service_day()
    page.goto(f"/service-days/{day.id}/book?patient={waiting.id}")
    found += check(page, lang, "booking form")
    page.goto(f"/service-days/{day.id}")
    found += check(page, lang, "service day")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_the_idle_warning_has_no_serious_violations(app, new_page, demo_data, lang):
    app.config["SESSION_IDLE_MINUTES"] = 0.2  # the page counts 12 s and warns for the last 6
    page = new_page("nurse@jinzhou.demo")
    choose(page, lang)
    expect(page.locator("#idle-warning")).to_be_visible(timeout=10_000)
    assert not check(page, lang, "idle warning")


ROLES = (
    "doctor@jinzhou.demo",
    "nurse@jinzhou.demo",
    "coordinator@hub.demo",
    "specialist@hub.demo",
    "pharmacist@hub.demo",
    "admin@hub.demo",
)
NUMBER = re.compile(r"\d+")


def kinds_of_page(client) -> list[str]:
    """One URL of each kind of page the crawler reaches (ids and query values set aside)."""
    seen, urls = set(), []
    for url, response in crawl(client):
        if response.status_code != 200 or b"<html" not in response.data:
            continue  # a region only ever asked for by htmx (a count, a row) is not a page
        parts = urlsplit(url)
        keys = sorted(pair.split("=")[0] for pair in parts.query.split("&") if pair)
        kind = (NUMBER.sub("#", parts.path), tuple(keys))
        if kind not in seen:
            seen.add(kind)
            urls.append(url)
    return urls


@pytest.mark.parametrize("email", ROLES)
def test_every_kind_of_page_of_every_role_has_no_serious_violations(
    login, new_page, referral, email
):
    """The whole crawl, each page in one of the three languages in turn (the main pages are
    checked in all three above)."""
    urls = kinds_of_page(login(email))
    assert len(urls) > 3
    page, found = new_page(email), []
    for turn, lang in enumerate(LANGUAGES):
        choose(page, lang)
        for url in urls[turn::3]:
            page.goto(url)
            found += check(page, lang, url)
    assert not found, "\n".join(found)


FOCUSED = """() => {
  const el = document.activeElement;
  if (el === document.body) return null;
  const style = getComputedStyle(el);
  return {id: el.id || el.name || el.textContent.trim().slice(0, 20),
          outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2};
}"""
CONTROLS = """() => [...document.querySelectorAll(
  "#patient-form input:not([type=hidden]), #patient-form select, #patient-form textarea, " +
  "#patient-form button")].filter(el => el.offsetParent !== null)
  .map(el => el.id || el.name || el.textContent.trim())"""


def test_every_control_is_reached_by_keyboard_with_a_visible_focus(new_page, demo_data):
    page = new_page("nurse@jinzhou.demo")
    page.goto("/patients/new")
    reached, unseen = set(), []
    for _ in range(80):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:  # past the last control, the focus is in the browser's own bar
            continue
        reached.add(focused["id"])
        if not focused["outline"]:
            unseen.append(focused["id"])
    assert not unseen, f"focus not visible on {unseen}"
    controls = set(page.evaluate(CONTROLS))
    assert len(controls) > 15
    missing = controls - reached
    assert not missing, f"not reachable by Tab: {missing}"


def test_messages_are_announced(new_page, demo_data):
    page = new_page("nurse@jinzhou.demo")
    page.goto("/patients/new")
    assert page.get_attribute("#flashes", "role") == "status"
    assert page.get_attribute("#flashes", "aria-live") == "polite"
    page.locator("#patient-form button.primary").click()
    expect(page.get_by_role("alert").filter(has_text="Please correct")).to_be_visible()
