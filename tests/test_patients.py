"""Registration, duplicates (also concurrent), search, the patient page, consents, isolation."""

import datetime as dt
import gzip
import re
import threading

import pytest

from clinic import demo
from clinic.models import AuditEvent, Consent, IdentityDocument, Patient
from clinic.patients.identity import parse_document

from conftest import log_in, user

FORM = {
    "chinese_name": "陳美玲",
    "english_name": "CHAN, Mei Ling",
    "sex": "F",
    "date_of_birth": "1975-03-08",
    "residency": "hk",
    "preferred_language": "zh_Hant_HK",
    "documents-0-kind": "hkid",
    "documents-0-number": "E364912(5)",
    "phone": "9123 4567",
    "address": "Flat 3B, 12/F, Tai Koo Shing",
    "allergies": "Penicillin (rash)",
    "insurer": "AIA",
    "policy_number": "P1234",
    "direct_billing": "y",
    "consent_cross_border": "y",
}


HTMX = {"HX-Request": "true"}


def errors(response) -> list[str]:
    return re.findall(r'class="error"[^>]*>([^<]*)<', response.get_data(as_text=True))


def actions(name: str) -> int:
    return AuditEvent.select().where(AuditEvent.action == name).count()


# Registration ---------------------------------------------------------------------------------
def test_registration_form_has_every_field_labelled_and_fits_the_budget(nurse):
    page = nurse.get("/patients/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for label in (
        "Chinese name",
        "English name",
        "Sex",
        "Date of birth",
        "Document type",
        "Document number",
        "Phone",
        "Address",
        "Preferred language",
        "Residency",
        "Allergies",
        "Long-term conditions",
        "Medications",
        "Insurer",
        "Policy number",
        "Direct-billing eligible",
        "Emergency contact",
        "Consents to cross-border sharing of records",
    ):
        assert re.search(rf"<label[^>]*for=\"[^\"]+\"[^>]*>\s*{re.escape(label)}", html) or (
            f"> {label}</label>" in html
        ), label
    assert (
        'hx-post="/patients/validate/documents-0-number"' in html and 'hx-trigger="change"' in html
    )
    assert 'aria-invalid="None"' not in html
    assert len(gzip.compress(page.data)) <= 14_000


def test_register_normalises_documents_and_phone_records_consent_and_audits(nurse):
    response = nurse.post("/patients/new", data=FORM)
    assert response.status_code == 303
    patient = Patient.get(Patient.english_name == "CHAN, Mei Ling")
    assert response.headers["Location"] == f"/patients/{patient.id}"
    assert patient.clinic.name == demo.CLINIC_A
    assert patient.phone == "+85291234567"
    assert patient.direct_billing is True
    assert [(d.kind, d.number) for d in patient.documents] == [("hkid", "E3649125")]
    assert [c.scope for c in patient.consents] == ["cross_border"]
    assert actions("patient_registered") == 1
    page = nurse.get(response.headers["Location"]).get_data(as_text=True)
    assert "Patient registered." in page
    assert "E364912(5)" in page
    assert "+852 9123 4567" in page
    assert "Direct billing" in page


def test_a_wrong_check_digit_comes_back_with_everything_typed(nurse):
    response = nurse.post("/patients/new", data=FORM | {"documents-0-number": "E364912(4)"})
    assert response.status_code == 422
    assert errors(response) == [
        "The check digit does not match the number: read the number on the card again."
    ]
    html = response.get_data(as_text=True)
    assert "Please correct the marked fields." in html
    for typed in ("陳美玲", "CHAN, Mei Ling", "1975-03-08", "E364912(4)", "Tai Koo Shing", "AIA"):
        assert typed in html
    assert Patient.select().where(Patient.english_name == "CHAN, Mei Ling").count() == 0


def test_missing_fields_are_named(nurse):
    response = nurse.post("/patients/new", data={"documents-0-kind": "hkid"})
    assert response.status_code == 422
    assert set(errors(response)) >= {
        "Enter the Chinese name, the English name or both.",
        "Choose the sex.",
        "Enter the date of birth.",
        "Choose the residency.",
    }


def test_a_field_is_checked_on_blur_and_only_that_field_comes_back(nurse):
    data = FORM | {"documents-0-number": "A123456(4)"}
    response = nurse.post(
        "/patients/validate/documents-0-number", data=data, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="field has-error" id="documents-0-number-field"')
    assert "The check digit does not match the number" in html
    assert 'value="A123456(4)"' in html
    assert "<html" not in html and "chinese_name" not in html
    fixed = nurse.post(
        "/patients/validate/documents-0-number",
        data=FORM | {"documents-0-number": "a1234563"},
        headers={"HX-Request": "true"},
    )
    assert "has-error" not in fixed.get_data(as_text=True)
    assert 'value="A1234563"' in fixed.get_data(as_text=True)


def test_a_resident_id_with_another_birth_date_is_only_a_warning(nurse):
    number = parse_document("cn_id", "810000196001010015").number
    data = FORM | {"documents-0-kind": "cn_id", "documents-0-number": number}
    response = nurse.post(
        "/patients/validate/documents-0-number", data=data, headers={"HX-Request": "true"}
    )
    assert "has-error" not in response.get_data(as_text=True)
    assert "The birth date in this number is 1 Jan 1960" in response.get_data(as_text=True)
    assert nurse.post("/patients/new", data=data).status_code == 303


def test_add_another_document_without_javascript_keeps_what_was_typed(nurse):
    response = nurse.post("/patients/new", data=FORM | {"add_document": "Add another document"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="documents-1-number"' in html
    assert "陳美玲" in html and "E364912(5)" in html
    assert Patient.select().where(Patient.english_name == "CHAN, Mei Ling").count() == 0
    data = FORM | {"documents-1-kind": "home_return", "documents-1-number": "H12345678 02"}
    assert nurse.post("/patients/new", data=data).status_code == 303
    permit = IdentityDocument.get(IdentityDocument.identity_key == "H12345678")
    assert (permit.number, permit.identity_key) == ("H1234567802", "H12345678")


# Duplicates ------------------------------------------------------------------------------------
def test_a_registered_document_is_refused_with_a_link_to_the_patient(nurse, make_patient):
    existing = make_patient(documents=[("hkid", "E3649125")], english_name="LEE, Siu Ming")
    response = nurse.post("/patients/new", data=FORM | {"documents-0-number": "e364912 5"})
    assert response.status_code == 422
    assert errors(response) == ["This document is already registered at this clinic."]
    assert f'href="/patients/{existing.id}"' in response.get_data(as_text=True)


def test_the_same_document_may_be_registered_at_another_clinic(login, make_patient):
    make_patient(clinic_name=demo.CLINIC_B, documents=[("hkid", "E3649125")])
    assert login("nurse@jinzhou.demo").post("/patients/new", data=FORM).status_code == 303


def test_the_database_refuses_a_second_copy_of_a_document(app, demo_data, make_patient):
    from peewee import IntegrityError

    make_patient(documents=[("hkid", "E3649125")])
    with pytest.raises(IntegrityError):
        make_patient(documents=[("hkid", "E3649125")], chinese_name="李四")


def test_two_desks_submitting_the_same_document_at_once_create_one_patient(app, demo_data):
    clients = [log_in(app.test_client(), "nurse@jinzhou.demo") for _ in range(2)]
    clients += [log_in(app.test_client(), "doctor@jinzhou.demo") for _ in range(2)]
    start = threading.Barrier(len(clients))
    statuses = []

    def submit(client):
        start.wait()
        statuses.append(client.post("/patients/new", data=FORM).status_code)

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [303, 422, 422, 422]
    assert IdentityDocument.select().where(IdentityDocument.number == "E3649125").count() == 1
    assert Patient.select().where(Patient.english_name == "CHAN, Mei Ling").count() == 1


def test_same_name_in_the_other_script_and_same_birthday_warns_then_saves(nurse, make_patient):
    existing = make_patient(
        chinese_name="陈美玲", english_name=None, date_of_birth=dt.date(1975, 3, 8)
    )
    response = nurse.post("/patients/new", data=FORM)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "A patient with the same name and date of birth exists" in html
    assert f'href="/patients/{existing.id}"' in html
    before = Patient.select().count()
    saved = nurse.post("/patients/new", data=FORM | {"register_anyway": "y"})
    assert saved.status_code == 303
    assert Patient.select().count() == before + 1


def test_the_look_alike_warning_comes_while_typing(nurse, make_patient):
    existing = make_patient(
        chinese_name="陈美玲", english_name=None, date_of_birth=dt.date(1975, 3, 8)
    )
    response = nurse.post("/patients/validate/date_of_birth", data=FORM, headers=HTMX)
    html = response.get_data(as_text=True)
    assert '<div id="duplicates" hx-swap-oob="true">' in html
    assert f'href="/patients/{existing.id}"' in html and 'name="register_anyway"' in html
    other = nurse.post(
        "/patients/validate/chinese_name", data=FORM | {"chinese_name": "陳美儀"}, headers=HTMX
    ).get_data(as_text=True)
    assert '<div id="duplicates" hx-swap-oob="true">' in other and 'href="/patients/' not in other
    assert "duplicates" not in nurse.post(
        "/patients/validate/phone", data=FORM, headers=HTMX
    ).get_data(as_text=True)


def test_english_names_match_whatever_the_case_and_order(nurse, make_patient):
    make_patient(chinese_name=None, english_name="Mei Ling CHAN", date_of_birth=dt.date(1975, 3, 8))
    data = FORM | {"chinese_name": ""}
    response = nurse.post("/patients/new", data=data)
    assert "A patient with the same name and date of birth exists" in response.get_data(
        as_text=True
    )


def test_same_name_with_another_birthday_is_no_duplicate(nurse, make_patient):
    make_patient(chinese_name="陈美玲", date_of_birth=dt.date(1975, 3, 9))
    assert nurse.post("/patients/new", data=FORM).status_code == 303


# Search -----------------------------------------------------------------------------------------
def search(client, query: str):
    return client.post("/patients/", data={"q": query}, headers={"HX-Request": "true"})


@pytest.fixture
def registered(nurse, make_patient):
    nurse.post(
        "/patients/new", data=FORM | {"chinese_name": "鍾大衛", "english_name": "CHUNG, Tai Wai"}
    )
    make_patient(chinese_name="李小龍", english_name="LEE, Siu Lung", phone="+85361234567")
    make_patient(
        clinic_name=demo.CLINIC_B, chinese_name="钟大卫", english_name="CHUNG, Tai Wai Other"
    )
    return Patient.get(Patient.chinese_name == "鍾大衛")


@pytest.mark.parametrize(
    "query",
    ["鍾大衛", "钟大卫", "大卫", "大衛", "钟", "衛", "chung", "Tai Wai", "wai chung", "chung tai w",
     "tai wai chung", "CHUNG, Tai Wai", "E3649125",
     "e364912(5)", "9123 4567", "+852 9123 4567", "852912"],
)  # fmt: skip
def test_search_finds_by_each_key_in_either_script(nurse, registered, query):
    response = search(nurse, query)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.startswith('<div id="search-results"')
    assert f'href="/patients/{registered.id}"' in html
    assert "Tai Wai Other" not in html  # the other clinic's register is never searched
    assert "李小龍" not in html


def test_searches_are_audited_with_the_patients_shown_not_the_text(nurse, registered):
    search(nurse, "钟大卫")
    event = AuditEvent.get(AuditEvent.action == "patients_searched")
    assert event.detail == f"1 shown: {registered.id}"
    assert event.user.email == "nurse@jinzhou.demo"


def test_search_by_macao_phone_and_nothing_found(nurse, registered):
    assert "李小龍" in search(nurse, "6123 4567").get_data(as_text=True)
    assert "No patient matches" in search(nurse, "鍾無").get_data(as_text=True)


def test_search_page_without_javascript_and_fragment_budget(nurse, registered, make_patient):
    for n in range(25):
        make_patient(chinese_name=f"鍾{n}", english_name=f"CHUNG, Number {n}")
    page = nurse.post("/patients/", data={"q": "chung"})
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    fragment = search(nurse, "chung")
    assert fragment.get_data(as_text=True).count("/check-in") == 20
    assert len(gzip.compress(fragment.data)) <= 8_000


def test_search_keys_follow_an_edit(nurse, registered):
    data = FORM | {"chinese_name": "陳志強", "english_name": "CHAN, Chi Keung"}
    assert nurse.post(f"/patients/{registered.id}/edit", data=data).status_code == 303
    assert f"/patients/{registered.id}" in search(nurse, "志强").get_data(as_text=True)
    assert f"/patients/{registered.id}" not in search(nurse, "大卫").get_data(as_text=True)


# The patient page, edit, consents -----
def test_patient_page_shows_the_record_and_is_audited(nurse, registered):
    page = nurse.get(f"/patients/{registered.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    for shown in ("鍾大衛", "CHUNG, Tai Wai", "E364912(5)", "Penicillin (rash)", "Direct billing"):
        assert shown in html
    event = AuditEvent.get(AuditEvent.action == "patient_viewed")
    assert (event.object_type, event.object_id) == ("patient", str(registered.id))
    assert event.user.email == "nurse@jinzhou.demo"
    assert len(gzip.compress(page.data)) <= 14_000


def test_edit_uses_the_same_validation_and_is_audited(nurse, registered):
    edit = nurse.get(f"/patients/{registered.id}/edit").get_data(as_text=True)
    assert AuditEvent.get(AuditEvent.action == "patient_viewed").detail == "edit form"
    assert 'value="E364912(5)"' in edit and 'value="鍾大衛"' in edit
    bad = nurse.post(f"/patients/{registered.id}/edit", data=FORM | {"phone": "12"})
    assert bad.status_code == 422
    assert errors(bad) == [
        "Enter a Hong Kong (+852, 8 digits), Macao (+853, 8 digits) or mainland mobile "
        "number (+86, 11 digits starting with 1)."
    ]
    data = FORM | {"phone": "+86 138 0013 8000", "documents-1-kind": "passport",
                   "documents-1-number": "K1234567", "documents-1-country": "gbr"}  # fmt: skip
    assert nurse.post(f"/patients/{registered.id}/edit", data=data).status_code == 303
    patient = Patient.get_by_id(registered.id)
    assert patient.phone == "+8613800138000"
    assert sorted((d.kind, d.identity_key) for d in patient.documents) == [
        ("hkid", "E3649125"),
        ("passport", "GBR:K1234567"),
    ]
    assert actions("patient_updated") == 1


def test_consent_withdrawal_is_a_new_fact_not_an_edit(nurse, registered):
    consent = Consent.get(Consent.patient == registered)
    assert consent.recorded_by.email == "nurse@jinzhou.demo"
    response = nurse.post(f"/patients/{registered.id}/consents/{consent.id}/withdraw")
    assert response.status_code == 303
    withdrawn = Consent.get_by_id(consent.id)
    assert withdrawn.withdrawn_by.email == "nurse@jinzhou.demo"
    assert withdrawn.recorded_at == consent.recorded_at and withdrawn.scope == consent.scope
    assert not registered.has_consent("cross_border")
    again = nurse.post(f"/patients/{registered.id}/consents/{consent.id}/withdraw")
    assert "already been withdrawn" in nurse.get(again.headers["Location"]).get_data(as_text=True)
    nurse.post(
        f"/patients/{registered.id}/consents", data={"scope": "cross_border", "note": "Oral"}
    )
    assert registered.has_consent("cross_border")
    assert Consent.select().where(Consent.patient == registered).count() == 2
    assert actions("consent_withdrawn") == 1 and actions("consent_recorded") == 1


# Tenant isolation -----
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/patients/{id}"), ("get", "/patients/{id}/edit"), ("post", "/patients/{id}/check-in"),
     ("post", "/patients/{id}/consents")],
)  # fmt: skip
def test_another_clinics_patient_is_not_found_and_the_attempt_audited(
    other_clinic_doctor, registered, method, path
):
    response = getattr(other_clinic_doctor, method)(path.format(id=registered.id))
    assert response.status_code == 404
    denied = AuditEvent.get(AuditEvent.action == "access_denied")
    assert (denied.object_type, denied.object_id) == ("patient", str(registered.id))
    assert denied.user.email == "doctor@huangge.demo"


def test_hub_staff_see_no_patient_without_a_referral(app, coordinator, registered):
    assert coordinator.get(f"/patients/{registered.id}").status_code == 404
    assert coordinator.get("/patients/").status_code == 403
    with app.app_context():
        assert registered not in list(Patient.visible_to(user("coordinator@hub.demo")))


def test_clinic_staff_see_their_register_only(app, registered):
    mine = Patient.visible_to(user("nurse@jinzhou.demo"))
    assert registered in list(mine)
    assert all(p.clinic.name == demo.CLINIC_A for p in mine)


def test_nav_links_to_patients_for_clinic_staff_only(nurse, coordinator):
    assert 'href="/patients/"' in nurse.get("/today").get_data(as_text=True)
    assert 'href="/patients/"' not in coordinator.get("/today").get_data(as_text=True)


def test_demo_register_has_valid_documents_in_both_clinics(app, demo_data):
    with app.test_request_context():
        for clinic in (demo.CLINIC_A, demo.CLINIC_B):
            patients = Patient.select().join_from(Patient, Patient.clinic.rel_model)
            count = patients.where(Patient.clinic.rel_model.name == clinic).count()
            assert count >= 30
        for document in IdentityDocument.select():
            parsed = parse_document(document.kind, document.number, document.country)
            assert parsed.number == document.number


def test_registering_with_two_documents_builds_the_search_keys_once(nurse, count_statements):
    data = FORM | {"documents-1-kind": "passport", "documents-1-number": "K1234567"}
    data["documents-1-country"] = "GBR"
    with count_statements() as seen:
        assert nurse.post("/patients/new", data=data).status_code == 303
    rebuilt = [s for s in seen.statements if s.startswith('INSERT INTO "patient_search_key"')]
    assert len(rebuilt) == 1
    patient = Patient.get(Patient.english_name == "CHAN, Mei Ling")
    assert [p.id for p in Patient.search(patient.clinic_id, "K1234567")] == [patient.id]
    assert [p.id for p in Patient.search(patient.clinic_id, "E364912")] == [patient.id]


def test_search_terms_travel_in_the_body_never_in_the_url(nurse, registered):
    page = nurse.get("/patients/").get_data(as_text=True)
    assert 'method="post"' in page and "hx-post=" in page and 'hx-get="/patients/' not in page
    assert "鍾大衛" in search(nurse, "E364912").get_data(as_text=True)
    assert "鍾大衛" not in nurse.get("/patients/?q=E364912").get_data(as_text=True)


def test_choosing_a_patient_for_a_referral_searches_by_post(doctor, registered):
    chooser = doctor.get("/referrals/new").get_data(as_text=True)
    assert 'method="post"' in chooser
    found = doctor.post("/referrals/new", data={"q": "E364912"}).get_data(as_text=True)
    assert "鍾大衛" in found


def test_add_another_document_asks_for_the_documents_alone(nurse):
    response = nurse.post(
        "/patients/new", data=FORM | {"add_document": "Add another document"}, headers=HTMX
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<fieldset id="documents">')
    assert 'name="documents-1-number"' in html and 'value="E364912(5)"' in html
    assert "chinese_name" not in html and "<html" not in html


def test_search_by_the_last_four_digits_of_the_phone(nurse, registered, make_patient):
    make_patient(chinese_name="王小明", english_name="WONG, Siu Ming", phone="+8613812345678")
    found = search(nurse, "5678").get_data(as_text=True)
    assert "王小明" in found and "鍾大衛" not in found
    both = search(nurse, "4567").get_data(as_text=True)  # 9123 4567 and Macao 6123 4567
    assert "鍾大衛" in both and "李小龍" in both and "王小明" not in both
    assert "王小明" in search(nurse, "138 1234").get_data(as_text=True)  # the start still works
