"""Malformed input is a 4xx, never a 500: ids, page numbers, control characters, `next`."""

import pytest

from clinic.models import AuditEvent, Patient, Visit

HUGE = "99999999999999999999"
NOT_ASCII = "²"  # str.isdigit() says yes; no database id is written like that


@pytest.mark.parametrize("bad", [HUGE, NOT_ASCII, "٣", "9223372036854775808"])
@pytest.mark.parametrize(
    "url", ["/patients/{}", "/patients/{}/edit", "/referrals/{}", "/referrals/{}/fhir"]
)
def test_malformed_ids_in_paths_are_not_found(doctor, url, bad):
    assert doctor.get(url.format(bad)).status_code == 404


@pytest.mark.parametrize("bad", [HUGE, NOT_ASCII, "-1", "0"])
def test_malformed_ids_in_arguments_are_not_found_and_audited(doctor, bad):
    response = doctor.get(f"/referrals/new?patient={bad}")
    assert response.status_code == 404
    denied = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
    assert denied.action == "access_denied"


@pytest.mark.parametrize("bad", [HUGE, NOT_ASCII])
def test_malformed_page_and_filters_give_the_list(coordinator, admin, bad):
    for url in (f"/referrals/?page={bad}", f"/referrals/?service={bad}&org={bad}"):
        assert coordinator.get(url).status_code == 200, url
    assert admin.get(f"/admin/audit?page={bad}").status_code == 200


def test_a_malformed_queue_version_is_a_bad_request(nurse, make_patient):
    patient = make_patient()
    nurse.post(f"/patients/{patient.id}/check-in")
    visit = Visit.get(Visit.patient == patient)
    response = nurse.post(f"/patients/visits/{visit.id}/call-in", data={"version": NOT_ASCII})
    assert response.status_code == 400


def test_a_nul_byte_in_the_login_form_is_refused_and_the_form_kept(client, demo_data):
    response = client.post("/login", data={"email": "doctor@jinzhou.demo\x00", "password": "x"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "control characters" in page and 'name="email"' in page


def test_a_control_character_in_a_patient_field_comes_back_with_the_form(nurse):
    data = {
        "chinese_name": "陳美玲", "english_name": "CHAN, Mei\x00 Ling", "sex": "F",
        "date_of_birth": "1975-03-08", "residency": "hk", "preferred_language": "zh_Hant_HK",
        "documents-0-kind": "hkid", "documents-0-number": "E364912(5)",
        "address": "Flat 3B\x07",
    }  # fmt: skip
    response = nurse.post("/patients/new", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert page.count("control characters") == 2 and "陳美玲" in page
    assert Patient.select().where(Patient.chinese_name == "陳美玲").count() == 0


def test_line_breaks_in_a_text_area_are_kept(nurse):
    data = {
        "chinese_name": "陳美玲", "english_name": "CHAN, Mei Ling", "sex": "F",
        "date_of_birth": "1975-03-08", "residency": "hk", "preferred_language": "zh_Hant_HK",
        "documents-0-kind": "hkid", "documents-0-number": "E364912(5)",
        "allergies": "Penicillin\r\nSulfa\tdrugs",
    }  # fmt: skip
    assert nurse.post("/patients/new", data=data).status_code == 303
    assert "Sulfa" in Patient.get(Patient.chinese_name == "陳美玲").allergies


def test_control_characters_in_query_arguments_are_refused(nurse):
    assert nurse.get("/patients/?page=%00").status_code == 422
    assert nurse.get("/patients/?page=1").status_code == 200


def test_line_breaks_in_next_never_reach_a_header(client, demo_data):
    assert client.get("/login?next=/today%0d%0aSet-Cookie:%20x=1").status_code == 422
    login = {"email": "doctor@jinzhou.demo", "password": "demo-pass-2026"}
    response = client.post("/login", data=login | {"next": "/today\r\nSet-Cookie: x=1"})
    assert response.status_code == 422
    assert client.post("/login", data=login).status_code == 303
    response = client.post("/language", data={"lang": "en", "next": "/patients\r\nX: 1"})
    assert response.status_code == 303 and response.headers["Location"] == "/today"
