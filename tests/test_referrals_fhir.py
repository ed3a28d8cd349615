"""FHIR R4 export: a Bundle that fhirclient's R4 models accept (strict) for every state."""

import pytest
from fhirclient.models.bundle import Bundle

from clinic.db import utcnow
from clinic.models import AuditEvent, Consent, IdentityDocument, Organisation
from clinic.models.referrals import STATES, HubService, Referral

from conftest import user

HUB = "Nansha Hub Hospital"
PATHS = {
    "draft": [],
    "submitted": ["submit"],
    "info_requested": ["submit", "request_info"],
    "accepted": ["submit", "accept"],
    "declined": ["submit", "decline"],
    "cancelled": ["submit", "cancel"],
    "no_show": ["submit", "accept", "no_show"],
    "completed": ["submit", "accept", "back_referral"],
    "closed": ["submit", "accept", "back_referral", "acknowledge"],
}
TASK_STATUS = {
    "draft": "draft",
    "submitted": "requested",
    "info_requested": "on-hold",
    "accepted": "accepted",
    "declined": "rejected",
    "cancelled": "cancelled",
    "no_show": "failed",
    "completed": "completed",
    "closed": "completed",
}


def test_every_state_has_a_path():
    assert set(PATHS) == set(STATES)


def walk(referral, steps):
    doctor, coordinator = user("doctor@jinzhou.demo"), user("coordinator@hub.demo")
    specialist = user("specialist@hub.demo")
    moves = {
        "submit": lambda: referral.submit(doctor),
        "request_info": lambda: referral.request_info(coordinator, "Latest ECG?"),
        "accept": lambda: referral.accept(coordinator, utcnow(), "Cardiology 3/F"),
        "decline": lambda: referral.decline(coordinator, "Not our service"),
        "cancel": lambda: referral.cancel(doctor, "Admitted elsewhere"),
        "no_show": lambda: referral.no_show(coordinator),
        "back_referral": lambda: referral.back_referral(
            specialist,
            br_diagnosis="Stable angina",
            br_treatment="PCI <LAD>",
            br_follow_up_plan="Lipids in 3 months",
            br_follow_up_due=utcnow().date(),
        ),
        "acknowledge": lambda: referral.acknowledge(doctor),
    }
    for step in steps:
        moves[step]()


@pytest.fixture
def patient(make_patient):
    patient = make_patient(
        documents=[("hkid", "G123456A"), ("home_return", "H12345678")],
        chinese_name="陳大文",
        english_name="CHAN, Tai Man",
    )
    IdentityDocument.create(
        patient=patient, clinic=patient.clinic, kind="passport", number="K1234567",
        identity_key="K1234567", country="GBR",
    )  # fmt: skip
    return patient


@pytest.mark.parametrize("state", list(PATHS))
def test_fhir_bundle_validates_for_every_state(doctor, make_patient, patient, state):
    hub = Organisation.by_name(HUB)
    consent = Consent.create(patient=patient, scope="cross_border", recorded_by=1)
    referral = Referral.create_draft(
        user("doctor@jinzhou.demo"), patient, to_org=hub, priority="green",
        service=HubService.get(HubService.code == "crossborder"), consent=consent,
        reason="Chest pain", working_diagnosis="Angina", icd10="I20.8", results="Trop T 12",
    )  # fmt: skip
    walk(referral, PATHS[state])
    response = doctor.get(f"/referrals/{referral.id}/fhir")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    data = response.get_json()
    assert Bundle(data, strict=True).as_json() == data
    resources = {e["resource"]["resourceType"]: e["resource"] for e in data["entry"]}
    task, request = resources["Task"], resources["ServiceRequest"]
    assert task["status"] == TASK_STATUS[state]
    assert task["businessStatus"]["coding"][0]["code"] == state
    assert task["focus"]["reference"] == next(
        e["fullUrl"] for e in data["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )
    assert request["priority"] == "asap" and request["intent"] == "order"
    assert request["reasonCode"][0]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": "I20.8",
    }
    assert ("output" in task) == (state in ("completed", "closed"))
    if state in ("completed", "closed"):
        summary = resources["Composition"]
        assert task["output"][0]["valueReference"]["reference"].startswith("urn:uuid:")
        assert "PCI &lt;LAD&gt;" in summary["section"][1]["text"]["div"]
    if state == "declined":
        assert task["statusReason"]["text"] == "Not our service"


def test_patient_identifiers_have_types_and_names_both_scripts(doctor, patient):
    referral = Referral.create_draft(
        user("doctor@jinzhou.demo"), patient, to_org=Organisation.by_name(HUB), reason="x"
    )
    data = doctor.get(f"/referrals/{referral.id}/fhir").get_json()
    fhir_patient = data["entry"][0]["resource"]
    types = {i["type"]["coding"][0]["code"]: i for i in fhir_patient["identifier"]}
    assert types["NNHKG"]["value"] == "G123456A"
    assert types["NNHKG"]["type"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v2-0203"
    )
    assert types["PPN"]["system"].endswith("/passport/gbr")
    assert types["HRP"]["value"] == "H12345678"
    assert "MR" in types
    names = {n["extension"][0]["valueCode"]: n for n in fhir_patient["name"]}
    assert names["zh-Hant-HK"]["text"] == "陳大文"
    assert (names["en"]["family"], names["en"]["given"]) == ("CHAN", ["Tai", "Man"])
    assert AuditEvent.select().where(AuditEvent.action == "export_fhir").count() == 1


def test_fhir_export_is_tenant_isolated(other_clinic_doctor, patient):
    referral = Referral.create_draft(
        user("doctor@jinzhou.demo"), patient, to_org=Organisation.by_name(HUB), reason="x"
    )
    assert other_clinic_doctor.get(f"/referrals/{referral.id}/fhir").status_code == 404


DOWN_PATHS = {
    "draft": [],
    "submitted": ["submit"],
    "accepted": ["submit", "accept_down"],
    "declined": ["submit", "decline"],
    "cancelled": ["submit", "cancel"],
}


@pytest.mark.parametrize("state", list(DOWN_PATHS))
def test_down_referral_bundle_validates(specialist, patient, state):
    hub_specialist, clinic_doctor = user("specialist@hub.demo"), user("doctor@huangge.demo")
    down = Referral.create_draft(
        hub_specialist, patient, direction="down", reason="Community follow-up",
        to_org=Organisation.by_name("Huangge Family-Doctor Clinic"),
    )  # fmt: skip
    moves = {
        "submit": lambda: down.submit(hub_specialist),
        "accept_down": lambda: down.accept_down(clinic_doctor),
        "decline": lambda: down.decline(clinic_doctor, "Outside our district"),
        "cancel": lambda: down.cancel(hub_specialist, "Readmitted"),
    }
    for step in DOWN_PATHS[state]:
        moves[step]()
    data = specialist.get(f"/referrals/{down.id}/fhir").get_json()
    assert Bundle(data, strict=True).as_json() == data
    task = next(e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "Task")
    assert task["status"] == TASK_STATUS[state]
