"""Two sessions in real browsers: each side sees the other's moves without reloading the page."""

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from clinic.db import utcnow
from clinic.models import IdentityDocument, Organisation, Patient, User
from clinic.models.referrals import Referral

from conftest import APPOINTMENT_YEAR

pytestmark = pytest.mark.browser

DOCTOR, COORDINATOR = "doctor@jinzhou.demo", "coordinator@hub.demo"
SPECIALIST, OTHER_DOCTOR = "specialist@hub.demo", "doctor@huangge.demo"


def mark(page):
    """Tag the loaded document: the tag survives htmx swaps but not a full page load."""
    page.evaluate("window.clinicTestMark = 'still-here'")


def not_reloaded(page) -> bool:
    return page.evaluate("window.clinicTestMark") == "still-here"


@pytest.fixture
def fast_polls(app):
    app.config["REFERRAL_POLL_SECONDS"] = 1


def test_referral_end_to_end_across_two_sessions(new_page, demo_data, make_patient, fast_polls):
    patient = make_patient(chinese_name="鄭家樂", english_name="CHENG, Ka Lok")
    doctor, hub = new_page(DOCTOR), new_page(COORDINATOR)
    hub.goto("/referrals/")
    mark(hub)

    # The doctor writes and submits the referral from the patient.
    doctor.goto(f"/referrals/new?patient={patient.id}")
    service = doctor.get_by_label("Service")
    service.select_option(label="Nansha Hub Hospital · Cross-border Cooperation Centre *")
    expect(doctor.get_by_label("The patient consents to cross-border sharing")).to_be_visible()
    service.select_option(label="Nansha Hub Hospital · Cardiology")
    expect(doctor.locator("#consent-box")).to_contain_text("Not needed for this service.")
    doctor.get_by_label("Urgent").check()
    doctor.get_by_label("Reason for referral").fill("Chest pain on exertion for 3 weeks")
    doctor.get_by_label("Working diagnosis").fill("Angina")
    doctor.get_by_role("button", name="Submit referral").click()
    doctor.wait_for_url(re.compile(r"/referrals/\d+$"))
    referral_id = int(doctor.url.rsplit("/", 1)[1])
    expect(doctor.locator("#referral-detail")).to_contain_text("Submitted")
    mark(doctor)

    # The hub inbox shows it without a reload; the coordinator asks a question inline.
    row = hub.locator(f"#referral-{referral_id}")
    expect(row).to_contain_text("鄭家樂")
    expect(row).to_contain_text("Submitted")
    row.get_by_role("link", name="Ask for information").click()
    row.get_by_label("Question for the referring doctor").fill("Please send the latest ECG.")
    row.get_by_role("button", name="Ask for information").click()
    expect(row).to_contain_text("Information requested")
    assert not_reloaded(hub)

    # The doctor's open page shows the question by itself, then the doctor answers.
    detail = doctor.locator("#referral-detail")
    expect(detail).to_contain_text("Please send the latest ECG.")
    assert not_reloaded(doctor)
    detail.get_by_role("link", name="Answer").click()
    doctor.get_by_label("Answer").fill("ECG: ST depression in V4-V6.")
    doctor.get_by_role("button", name="Answer").click()
    expect(doctor.locator("#referral-detail")).to_contain_text("Submitted")
    mark(doctor)

    # The hub sees the answer come back, and accepts inline.
    expect(row).to_contain_text("Submitted")
    row.get_by_role("link", name="Accept", exact=True).click()
    row.get_by_label("Appointment time").fill(f"{APPOINTMENT_YEAR}-12-01T09:30")
    row.get_by_label("Place").fill("Cardiology clinic, 3/F")
    row.get_by_role("button", name="Accept", exact=True).click()
    expect(row).to_contain_text("Accepted")
    assert not_reloaded(hub)

    expect(doctor.locator("#referral-detail")).to_contain_text("Cardiology clinic, 3/F")
    assert not_reloaded(doctor)

    # The specialist writes the back-referral inline; the doctor sees it and acknowledges.
    specialist = new_page(SPECIALIST)
    specialist.goto("/referrals/")
    mark(specialist)
    srow = specialist.locator(f"#referral-{referral_id}")
    srow.get_by_role("link", name="Write back-referral").click()
    srow.get_by_label("Diagnosis").fill("Stable angina")
    srow.get_by_label("Medication changes").fill("Add aspirin 80 mg daily")
    srow.get_by_label("Follow-up plan").fill("Lipids in 3 months")
    srow.get_by_role("button", name="Write back-referral").click()
    expect(srow).to_contain_text("Back-referral written")

    detail = doctor.locator("#referral-detail")
    expect(detail).to_contain_text("Stable angina")
    expect(detail).to_contain_text("Dr LAM Chi Keung")
    assert not_reloaded(doctor)
    detail.get_by_role("button", name="Acknowledge").click()
    expect(doctor.locator("#referral-detail")).to_contain_text("Closed")

    # The hub's inbox shows open referrals: a closed one leaves it (it is under "All").
    expect(srow).to_have_count(0)
    assert not_reloaded(specialist)
    specialist.goto("/referrals/?state=all")
    expect(specialist.locator(f"#referral-{referral_id}")).to_contain_text("Closed")
    assert Referral.get_by_id(referral_id).state == "closed"


def test_down_referral_is_accepted_by_a_clinic(new_page, demo_data, make_patient, fast_polls):
    patient = make_patient(documents=[("hkid", "X3546700")])
    source = Referral.create_draft(
        _doctor(), patient, to_org=Organisation.by_name(demo_data.HUB_NAME),
        reason="Palpitations",
    )  # fmt: skip
    source.submit(_doctor())
    coordinator = User.get(User.email == "coordinator@hub.demo")
    source.accept(coordinator, utcnow() + dt.timedelta(days=1), "Room 1")
    clinic = new_page(OTHER_DOCTOR)
    clinic.goto("/referrals/")
    mark(clinic)

    specialist = new_page(SPECIALIST)
    specialist.goto(f"/referrals/{source.id}/down")
    specialist.get_by_label("Clinic", exact=True).select_option(label=demo_data.CLINIC_B)
    specialist.get_by_label("Reason for referral").fill("Community follow-up of AF")
    specialist.get_by_label("The patient consents to their record being shared").check()
    specialist.get_by_role("button", name="Send down-referral").click()
    specialist.wait_for_url(re.compile(r"/referrals/\d+$"))
    down_id = int(specialist.url.rsplit("/", 1)[1])

    row = clinic.locator(f"#referral-{down_id}")
    expect(row).to_contain_text("Down-referral")
    row.get_by_role("button", name="Accept into our register").click()
    expect(row).to_contain_text("Accepted")
    assert not_reloaded(clinic)
    expect(clinic.get_by_role("link", name=re.compile("Referrals"))).to_contain_text("Referrals")

    huangge = Organisation.by_name(demo_data.CLINIC_B)
    registered = IdentityDocument.get(
        IdentityDocument.clinic == huangge, IdentityDocument.identity_key == "X3546700"
    ).patient
    assert Patient.get_by_id(registered.id).chinese_name == "陳大文"
    assert Referral.get_by_id(down_id).clinic_patient_id == registered.id


def _doctor():
    from conftest import user

    return user(DOCTOR)


def test_referral_letter_prints_on_one_a4_page(new_page, demo_data, make_patient):
    patient = make_patient(
        medications="Amlodipine 5 mg daily\nMetformin 500 mg twice daily\nAtorvastatin 20 mg",
        allergies="Penicillin (rash)",
    )
    referral = Referral.create_draft(
        _doctor(), patient, to_org=Organisation.by_name(demo_data.HUB_NAME), priority="urgent",
        reason="Exertional chest pain for three weeks, now also at rest after meals.",
        clinical_summary="67-year-old man, hypertension and type 2 diabetes for 10 years. "
        "Chest tightness on climbing stairs, relieved by rest within 5 minutes.",
        working_diagnosis="Unstable angina", icd10="I20.0",
        results="ECG: ST depression V4-V6. Troponin T 12 ng/L. LDL 3.9 mmol/L. HbA1c 7.8%.",
        medications=patient.medications, allergies=patient.allergies, transport_needed=True,
        mobility="wheelchair", escort=True, pickup_notes="Lift lobby B, 12/F, flat 3",
    )  # fmt: skip
    referral.submit(_doctor())
    page = new_page(DOCTOR)
    page.goto(f"/referrals/{referral.id}")
    page.get_by_role("link", name="Referral letter").click()  # a boosted navigation
    page.wait_for_url(f"**/referrals/{referral.id}/letter")
    expect(page.locator(".letter")).to_contain_text("轉介原因")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    pdf = page.pdf(format="A4")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 1, f"the letter prints on {pages} pages"


PHONE = {"width": 390, "height": 844}


def test_referral_detail_and_inbox_filters_fit_a_phone(new_page, demo_data, make_patient):
    from clinic.models.referrals import HubService

    doctor = _doctor()
    r = Referral.create_draft(
        doctor, make_patient(), to_org=Organisation.by_name(demo_data.HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
        clinical_summary="Three weeks of exertional chest pain, worse on stairs and in the cold",
    )  # fmt: skip
    r.submit(doctor)
    hub = new_page(COORDINATOR)
    hub.set_viewport_size(PHONE)
    hub.goto(f"/referrals/{r.id}")
    label = hub.locator(".facts dt", has_text="Clinical summary").first.bounding_box()
    value = hub.locator(".facts dt", has_text="Clinical summary").first.locator(
        "xpath=following-sibling::dd[1]"
    )
    box = value.bounding_box()
    assert box["y"] >= label["y"] + label["height"] - 1, "label and value side by side"
    assert box["width"] > PHONE["width"] * 0.6
    hub.goto("/referrals/")
    width = hub.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the inbox scrolls sideways: {width} px"


def test_counts_on_one_screen_agree_after_an_inline_move(new_page, demo_data, make_patient):
    from clinic.models.referrals import HubService

    doctor = _doctor()
    for name in ("陳一", "陳二"):
        r = Referral.create_draft(
            doctor, make_patient(chinese_name=name),
            to_org=Organisation.by_name(demo_data.HUB_NAME),
            service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
        )  # fmt: skip
        r.submit(doctor)
    hub = new_page(COORDINATOR)
    hub.goto("/referrals/")
    badge, pill = hub.locator("#badge-referrals"), hub.locator(".tabs .count-referrals")
    before = int(badge.inner_text())
    assert int(pill.inner_text()) == before
    row = hub.locator(f"#referral-{r.id}")
    row.get_by_role("link", name="Decline").click()
    row.get_by_label("Reason for declining").fill("Not our service")
    row.get_by_role("button", name="Decline").click()
    expect(badge).to_have_text(str(before - 1))
    expect(pill).to_have_text(str(before - 1))
