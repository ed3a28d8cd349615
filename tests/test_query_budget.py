"""Query budget: every page, fragment, move and poll runs a small, fixed number of SQL
statements, whatever the number of rows it shows (an N+1 cannot come back unseen).

A crawler visits every page and htmx GET reachable per role (as the page-weight test does),
then each one is requested alone while peewee's statements are counted.
"""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from clinic.db import utcnow
from clinic.models import Organisation, Referral

from conftest import for_each_role, user
from test_page_weight import ROLES

PAGE, FRAGMENT, POLL = 6, 5, 2
HX = {"HX-Request": "true"}
POLLING = {"HX-Request": "true", "X-Clinic-Poll": "1"}
POLLED = re.compile(r'hx-get="([^"]*[?&]amp;v=[^"]*|[^"]*\?v=[^"]*)"')


def statements(count_statements, send, *args, **kwargs) -> tuple[int, object]:
    """(statements run, response) of one request `send(*args, **kwargs)`."""
    with count_statements() as seen:
        response = send(*args, **kwargs)
    return len(seen.statements), response


@pytest.mark.parametrize("email", for_each_role(ROLES))
def test_every_page_fragment_and_poll_stays_within_its_budget(
    login, role_crawls, count_statements, email
):
    client = login(email)
    # What the crawl reached (kept if this role's page-weight test crawled the same load of the
    # demo data); each page is then requested, and counted, here.
    pages = [seen.url for seen in role_crawls.seen(client, email) if seen.status_code == 200]
    over = []
    for url in pages:
        ran, page = statements(count_statements, client.get, url)
        if page.status_code == 200 and "text/html" in page.content_type and ran > PAGE:
            over.append(f"page {url}: {ran}")
        ran, part = statements(count_statements, client.get, url, headers=HX)
        if part.status_code == 200 and b"<html" not in part.data and ran > FRAGMENT:
            over.append(f"fragment {url}: {ran}")
        for polled in POLLED.findall(page.get_data(as_text=True)):
            polled = polled.replace("&amp;", "&")
            ran, answer = statements(count_statements, client.get, polled, headers=POLLING)
            if answer.status_code != 204 or ran > POLL:
                over.append(f"poll {polled}: {answer.status_code}, {ran}")
    assert pages and not over, over


def _referrals(patient, count: int):
    doctor, hub = user("doctor@jinzhou.demo"), Organisation.by_name("Nansha Hub Hospital")
    service = hub.services.first()
    for _ in range(count):
        referral = Referral.create_draft(
            doctor, patient, to_org=hub, service=service, priority="urgent", reason="Chest pain"
        )
        referral.submit(doctor)


@pytest.mark.parametrize(
    "email, url, search",
    [
        ("coordinator@hub.demo", "/referrals/", None),
        ("coordinator@hub.demo", "/referrals/?needs=1", None),
        ("coordinator@hub.demo", "/today", None),
        ("doctor@jinzhou.demo", "/referrals/", None),
        ("doctor@jinzhou.demo", "/today", None),
        ("doctor@jinzhou.demo", "/patients/", "chan"),
    ],
)
def test_a_list_runs_as_many_statements_for_50_rows_as_for_1(
    login, count_statements, make_patient, email, url, search
):
    client = login(email)

    def show():  # a search is sent as the page sends it: posted, as htmx does
        if search:
            return client.post(url, data={"q": search}, headers=HX)
        return client.get(url)

    client.csrf_token()  # read from a page before counting, as a browser has it
    patient = make_patient(english_name="CHAN, Tai Man")
    _referrals(patient, 1)
    one, _ = statements(count_statements, show)
    for n in range(49):
        _referrals(make_patient(english_name=f"CHAN, Number {n}"), 1)
    fifty, response = statements(count_statements, show)
    assert response.status_code == 200
    if search:
        assert response.get_data(as_text=True).count("CHAN, Number") > 10  # a page of them
    assert fifty == one, f"{url}: {one} statements for 1 row, {fifty} for 50"


def test_an_inline_move_stays_within_the_move_budget(login, count_statements, make_patient):
    coordinator = login("coordinator@hub.demo")
    patient = make_patient()
    _referrals(patient, 1)
    referral = Referral.get(Referral.patient == patient)
    url = f"/referrals/{referral.id}/accept"
    ran, form = statements(count_statements, coordinator.get, url, headers=HX)
    assert form.status_code == 200 and ran <= FRAGMENT, ran
    when = utcnow().replace(year=utcnow().year + 1).strftime("%Y-%m-%dT%H:%M")
    data = {"appointment_at": when, "appointment_place": "Room 1"}
    headers = HX | {"X-CSRFToken": coordinator.csrf_token()}  # fetched before counting
    ran, row = statements(
        count_statements, lambda: coordinator.post(url, data=data, headers=headers)
    )
    assert row.status_code == 200 and Referral.get_by_id(referral.id).state == "accepted"
    assert ran <= FRAGMENT, ran


def test_referrals_stopped_for_consent_read_by_the_hub_stay_within_budget(
    login, count_statements, make_patient
):
    from clinic.models import Consent, HubService

    coordinator = login("coordinator@hub.demo")
    doctor = user("doctor@jinzhou.demo")
    cross_border = HubService.get(HubService.code == "crossborder")

    def stopped(count: int) -> Referral:
        for _ in range(count):
            patient = make_patient()
            consent = Consent.create(patient=patient, scope="cross_border", recorded_by=doctor)
            referral = Referral.create_draft(
                doctor, patient, to_org=cross_border.hub_id, service=cross_border,
                consent=consent, reason="Chest pain",
            )  # fmt: skip
            referral.submit(doctor)
            consent.withdraw(doctor)
            Referral.stop_all_for_consent(doctor, consent)
        return referral

    referral = stopped(1)
    ran, page = statements(count_statements, coordinator.get, f"/referrals/{referral.id}")
    assert page.status_code == 200 and ran <= PAGE, ran
    url = f"/referrals/{referral.id}/row"
    ran, row = statements(count_statements, coordinator.get, url, headers=HX)
    assert row.status_code == 200 and ran <= FRAGMENT, ran
    one, _ = statements(count_statements, coordinator.get, "/referrals/?state=cancelled")
    stopped(20)
    twenty, inbox = statements(count_statements, coordinator.get, "/referrals/?state=cancelled")
    assert inbox.get_data(as_text=True).count("Stopped: consent withdrawn") >= 21
    assert twenty == one, f"{one} statements for 1 stopped row, {twenty} for 21"


def test_the_poll_pattern_finds_polled_regions():
    page = '<div hx-get="/referrals/?state=&amp;v=3-1.0" hx-trigger="every 20s"></div>'
    assert [parse_qs(urlsplit(u.replace("&amp;", "&")).query)["v"] for u in POLLED.findall(page)]


def _consultations(patient, count: int):
    from clinic.models import Consultation

    nurse, hub = user("nurse@jinzhou.demo"), Organisation.by_name("Nansha Hub Hospital")
    for _ in range(count):
        Consultation.ask(
            nurse, hub, patient, drug_text="Amlodipine", question_type="dosing",
            urgency="same_day", details="Dose in renal impairment?",
        )  # fmt: skip


@pytest.mark.parametrize(
    "email, url",
    [
        ("pharmacist@hub.demo", "/consultations/"),
        ("pharmacist@hub.demo", "/consultations/?state=open&urgency=same_day&type=dosing"),
        ("pharmacist@hub.demo", "/today"),
        ("nurse@jinzhou.demo", "/consultations/"),
        ("nurse@jinzhou.demo", "/consultations/today"),
        ("nurse@jinzhou.demo", "/consultations/library?drug=aml"),
    ],
)
def test_consultation_lists_run_as_many_statements_for_50_rows_as_for_1(
    login, count_statements, make_patient, email, url
):
    from clinic.models import Consultation

    client = login(email)
    _consultations(make_patient(english_name="CHAN, Tai Man"), 1)
    pharmacist = user("pharmacist@hub.demo")

    def answer_all():  # the library lists answered questions
        for c in Consultation.select().where(Consultation.state == "open"):
            c.claim(pharmacist)
            c.answer(pharmacist, [], "Halve the dose.", [])

    if "library" in url:
        answer_all()
    one, _ = statements(count_statements, client.get, url)
    for n in range(49):
        _consultations(make_patient(english_name=f"CHAN, Number {n}"), 1)
    if "library" in url:
        answer_all()
    fifty, response = statements(count_statements, client.get, url)
    assert response.status_code == 200
    assert fifty == one, f"{url}: {one} statements for 1 row, {fifty} for 50"


def test_an_inline_claim_stays_within_the_move_budget(app, login, count_statements, make_patient):
    from clinic.models import Consultation

    pharmacist = login("pharmacist@hub.demo")
    _consultations(make_patient(), 1)
    consultation = Consultation.select().order_by(Consultation.id.desc()).first()
    headers = HX | {"X-CSRFToken": pharmacist.csrf_token()}
    url = f"/consultations/{consultation.id}/claim"
    ran, row = statements(count_statements, lambda: pharmacist.post(url, headers=headers))
    assert row.status_code == 200 and Consultation.get_by_id(consultation.id).state == "claimed"
    assert ran <= FRAGMENT, ran
    url = f"/consultations/{consultation.id}/request-info"
    ran, form = statements(count_statements, pharmacist.get, url, headers=HX)
    assert form.status_code == 200 and ran <= FRAGMENT, ran


@pytest.mark.parametrize(
    "email, url",
    [
        ("pharmacist@hub.demo", "/consultations/drugs/search?q=阿司匹林"),
        ("nurse@jinzhou.demo", "/consultations/drugs/search?q=amox+clav&name=drug_id"),
        ("doctor@jinzhou.demo", "/consultations/drugs/search?drug=para"),
        ("pharmacist@hub.demo", "/consultations/phrases/pick?kind=dose&q=tablet&name=dose"),
        ("pharmacist@hub.demo", "/consultations/phrases/pick?kind=timing&q=飯後"),
        ("pharmacist@hub.demo", "/consultations/phrases?kind=warning&q=alcohol"),
        ("pharmacist@hub.demo", "/consultations/drugs?q=amox"),
    ],
)
def test_the_catalogue_search_and_pickers_stay_within_the_fragment_budget(
    login, count_statements, email, url
):
    client = login(email)
    ran, part = statements(count_statements, client.get, url, headers=HX)
    assert part.status_code == 200 and (b"data-" in part.data or b"<tr" in part.data), url
    assert ran <= FRAGMENT, f"{url}: {ran}"


@pytest.mark.parametrize(
    "url",
    [
        "/consultations/drugs",
        "/consultations/drugs/search?q=zz",
        "/consultations/phrases",
        "/consultations/phrases/pick?kind=dose&q=zz",
    ],
)
def test_the_catalogue_runs_as_many_statements_for_50_rows_as_for_1(
    app, login, count_statements, url
):
    from clinic.models import Drug, Phrase

    client = login("pharmacist@hub.demo")
    writer, approver = user("pharmacist@hub.demo"), user("pharmacist2@hub.demo")

    def add(n: int):
        with app.test_request_context():
            Drug.add(
                writer, {"generic_name": f"Zz drug {n}", "name_hant": "測試", "name_hans": "测试"}
            )
            phrase = Phrase.write(writer, "dose", f"Zz {n} tablets", "每次服用一粒", "每次服用1片")
            phrase.approve(approver)

    add(0)
    one, _ = statements(count_statements, client.get, url)
    for n in range(1, 50):
        add(n)
    fifty, response = statements(count_statements, client.get, url)
    assert response.status_code == 200
    assert fifty == one, f"{url}: {one} statements for 1 row, {fifty} for 50"
