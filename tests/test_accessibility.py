"""WCAG 2.1 AA as a test: axe-core on every main page and fragment state, in the three languages."""

import datetime as dt
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from clinic.models import Booking, Organisation, Referral, Visit
from clinic.models.referrals import HubService

from conftest import APPOINTMENT_YEAR, crawl, user

pytestmark = pytest.mark.browser
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
SERIOUS = ("serious", "critical")
LANGUAGES = {"en": "English", "zh-Hant-HK": "繁體中文", "zh-Hans-CN": "简体中文"}
axe = Axe()
# Only the violations come back from the page (as `Axe.run` would give them, with every rule
# that passed left in the browser): sending the whole result over took about 40% of a check.
RUN_AXE = "options => axe.run(options).then(results => results.violations)"


def serious_violations(page) -> list[str]:
    page.evaluate(axe.axe_script)
    violations = page.evaluate(RUN_AXE, {**WCAG_AA, "resultTypes": ["violations"]})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in SERIOUS
    ]


def check(page, lang: str, where: str) -> list[str]:
    found = [f"{where}: {v}" for v in serious_violations(page)]
    if page.get_attribute("html", "lang") != lang:
        found.append(f"{where}: <html lang> is {page.get_attribute('html', 'lang')!r}")
    return found


def test_the_check_finds_serious_violations(new_page):
    """The check itself: a page with an image without text and an unnamed button fails it."""
    page = new_page()
    page.set_content('<html lang="fr"><main><img src="x.png"><button></button></main></html>')
    found = check(page, "en", "made up")
    assert any("image-alt (critical)" in v for v in found), found
    assert any("button-name (critical)" in v for v in found), found
    assert "made up: <html lang> is 'fr'" in found


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
        "/patients/",
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
def waiting(demo_data, make_patient):
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
    """One URL of each kind of page the crawler reaches (ids, query values and the version a
    poll sends set aside)."""
    seen, urls = set(), []
    for url, response in crawl(client):
        if response.status_code != 200 or b"<html" not in response.data:
            continue  # a region only ever asked for by htmx (a count, a row) is not a page
        parts = urlsplit(url)
        keys = sorted({pair.split("=")[0] for pair in parts.query.split("&") if pair} - {"v"})
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


# ---- the main journeys by keyboard alone ----------------------------------------------------
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2)
    || style.boxShadow !== "none";
  const name = el.type === "radio" ? el.name : el.id || el.name || el.textContent.trim();
  return {name: name.slice(0, 30) || el.tagName,
          seen: el.matches(":focus-visible") && ring};
}"""
REGION_CONTROLS = """(region) => [...document.querySelectorAll(
  region + " :is(a[href], input:not([type=hidden]), select, textarea, button)")]
  .filter(el => el.offsetParent !== null && !el.disabled)
  .map(el => (el.type === "radio" ? el.name : el.id || el.name || el.textContent.trim())
    .slice(0, 30) || el.tagName)"""


def tab_through(page, region: str, presses: int = 90) -> None:
    """Tab through the whole page: every control of `region` is reached, each with a visible
    focus (a radio group is one stop, as in every browser)."""
    reached, unseen = set(), []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_RING)
        if focused is None:  # past the last control, the focus is in the browser's own bar
            continue
        reached.add(focused["name"])
        if not focused["seen"]:
            unseen.append(focused["name"])
    assert not unseen, f"focus not visible on {unseen}"
    missing = set(page.evaluate(REGION_CONTROLS, region)) - reached
    assert not missing, f"not reachable by Tab: {missing}"


def tab_to(page, target, presses: int = 90) -> None:
    """Press Tab (only) until `target` has the focus; it shows that it has."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            assert page.evaluate(FOCUS_RING)["seen"], "the focus is not visible"
            return
    raise AssertionError(f"{target} not reached by Tab")


def test_the_queue_is_worked_by_keyboard(new_page, waiting):
    page = new_page("nurse@jinzhou.demo")
    page.goto("/patients/queue")
    tab_through(page, "#queue")
    page.goto("/patients/queue")
    row = page.locator("#queue tr", has_text="鍾大衛")
    tab_to(page, row.get_by_role("button", name="Call in"))
    page.keyboard.press("Enter")
    expect(row).to_contain_text("With doctor")
    expect(page.get_by_role("status")).to_contain_text("Called in.")  # announced
    tab_to(page, row.get_by_role("button", name="Back to waiting"))
    page.keyboard.press("Space")
    expect(row).to_contain_text("Waiting")
    expect(page.get_by_role("status")).to_contain_text("Back in the waiting queue.")
    assert Visit.get(Visit.patient == waiting).state == "waiting"


def test_a_referral_is_written_and_submitted_by_keyboard(new_page, demo_data, waiting):
    page = new_page("doctor@jinzhou.demo")
    page.goto(f"/referrals/new?patient={waiting.id}")
    tab_through(page, "#referral-form")
    page.goto(f"/referrals/new?patient={waiting.id}")
    service = page.get_by_label("Service")
    tab_to(page, service)
    for _ in range(20):
        if "Cardiology" in service.evaluate("s => s.selectedOptions[0].textContent"):
            break
        page.keyboard.press("ArrowDown")
    tab_to(page, page.locator("input[name=priority]:checked"))  # a radio group is one stop
    while not page.get_by_label("Urgent").is_checked():
        page.keyboard.press("ArrowDown")  # … whose options the arrows choose
    tab_to(page, page.get_by_label("Reason for referral"))
    page.keyboard.type("Chest pain on exertion")
    tab_to(page, page.get_by_role("button", name="Submit referral"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/referrals/\d+$"))
    expect(page.get_by_role("status")).to_contain_text("submitted")
    made = Referral.get(Referral.reason == "Chest pain on exertion")
    assert (made.state, made.priority, made.service.code) == ("submitted", "urgent", "cardiology")


def test_a_service_day_booking_is_made_by_keyboard(new_page, waiting, make_service_day):
    day = make_service_day(capacity=1)
    page = new_page("nurse@jinzhou.demo")
    page.goto(f"/service-days/{day.id}/book?patient={waiting.id}")
    tab_through(page, "#booking-form")
    page.goto(f"/service-days/{day.id}/book?patient={waiting.id}")
    slot = page.get_by_label("Slot", exact=True)
    tab_to(page, slot)
    page.keyboard.press("ArrowDown")
    chosen = slot.evaluate("s => s.selectedOptions[0].textContent")
    waitlist = page.get_by_label("If the slot is full, put the patient on its waitlist")
    tab_to(page, waitlist)
    page.keyboard.press("Space")
    expect(waitlist).to_be_checked()
    tab_to(page, page.locator("#booking-form").get_by_role("button", name="Book"))
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/service-days/{day.id}")
    expect(page.get_by_role("status")).to_contain_text("is booked.")
    booking = Booking.get(Booking.patient == waiting.id)
    assert booking.state == "booked" and chosen.startswith(f"{booking.slot.starts:%H:%M}")
