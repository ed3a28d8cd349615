"""Referral pages: create from a patient, outbox and inbox, inline moves, isolation, counts."""

import datetime as dt
import json
import re

import pytest
from flask_babel import format_date

from clinic.db import utcnow
from clinic.models import AuditEvent, Consent, Organisation, Patient
from clinic.models.referrals import HubService, Referral, ReferralEvent, Refused

from conftest import APPOINTMENT_YEAR, crawl, past_access_window, user

HUB = "Nansha Hub Hospital"
SOON = dt.date.today() + dt.timedelta(days=30)  # an appointment day a form accepts
HX = {"HX-Request": "true"}
LATER = f"{APPOINTMENT_YEAR}-12-01T09:30"


def service(code="cardiology"):
    return HubService.get(HubService.code == code)


@pytest.fixture
def patient(make_patient):
    return make_patient(
        chinese_name="林美玉",
        english_name="LAM, Mei Yuk",
        medications="Amlodipine 5 mg daily",
        allergies="Sulfa drugs",
        direct_billing=True,
    )


def referral_form(**fields):
    return {
        "service": service().id,
        "priority": "urgent",
        "reason": "Exertional chest pain",
        "clinical_summary": "3 weeks, worse on stairs",
        "working_diagnosis": "Angina",
        "icd10": "i20.8",
        "medications": "Amlodipine 5 mg daily",
        "send": "submit",
        **fields,
    }


def submitted(patient, **fields):
    doctor = user("doctor@jinzhou.demo")
    r = Referral.create_draft(
        doctor, patient, to_org=Organisation.by_name(HUB),
        service=fields.pop("service", None) or service(),
        priority=fields.pop("priority", "urgent"), reason="Chest pain", **fields,
    )  # fmt: skip
    r.submit(doctor)
    return r


def test_referral_form_prefills_the_record_and_submits(doctor, patient):
    page = doctor.get(f"/referrals/new?patient={patient.id}").get_data(as_text=True)
    assert "Amlodipine 5 mg daily" in page and "Sulfa drugs" in page
    assert '<input checked id="direct_billing"' in page
    assert '<label for="reason">Reason for referral</label>' in page
    response = doctor.post(
        f"/referrals/new?patient={patient.id}",
        data=referral_form(medications="Amlodipine 10 mg daily"),
    )
    assert response.status_code == 303
    referral = Referral.get(Referral.patient == patient)
    assert (referral.state, referral.icd10, referral.priority) == ("submitted", "I20.8", "urgent")
    assert referral.medications == "Amlodipine 10 mg daily"
    assert Patient.get_by_id(patient.id).medications == "Amlodipine 5 mg daily"  # record stays
    assert referral.owner.name == HUB
    submits = AuditEvent.select().where(AuditEvent.action == "submit")
    assert submits.where(AuditEvent.object_id == str(referral.id)).count() == 1


def test_save_as_draft_is_not_seen_by_the_hub(doctor, coordinator, patient):
    doctor.post(f"/referrals/new?patient={patient.id}", data=referral_form(send="draft"))
    referral = Referral.get(Referral.patient == patient)
    assert referral.state == "draft"
    assert coordinator.get(f"/referrals/{referral.id}").status_code == 404
    assert "林美玉" not in coordinator.get("/referrals/").get_data(as_text=True)
    assert doctor.post(f"/referrals/{referral.id}/submit").status_code == 303
    assert "林美玉" in coordinator.get("/referrals/").get_data(as_text=True)


def test_invalid_referral_comes_back_with_what_was_typed(doctor, patient):
    response = doctor.post(
        f"/referrals/new?patient={patient.id}",
        data=referral_form(reason="", icd10="chest", clinical_summary="Typed text kept"),
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Give the reason for referral." in page
    assert "An ICD-10 code looks like I20.8 or E11." in page
    assert "Typed text kept" in page
    assert Referral.select().where(Referral.patient == patient).count() == 0


def test_cross_border_service_requires_consent_and_records_it(doctor, patient):
    data = referral_form(service=service("crossborder").id)
    refused = doctor.post(f"/referrals/new?patient={patient.id}", data=data)
    assert refused.status_code == 422
    assert "consent is required" in refused.get_data(as_text=True)
    ok = doctor.post(f"/referrals/new?patient={patient.id}", data=data | {"consent_given": "y"})
    assert ok.status_code == 303
    referral = Referral.get(Referral.patient == patient)
    assert referral.consent.scope == "cross_border"
    assert referral.state == "submitted"


def test_withdrawn_consent_blocks_the_next_submission(doctor, patient):
    data = referral_form(service=service("crossborder").id, consent_given="y", send="draft")
    doctor.post(f"/referrals/new?patient={patient.id}", data=data)
    referral = Referral.get(Referral.patient == patient)
    Consent.update(withdrawn_at=utcnow()).where(Consent.id == referral.consent_id).execute()
    doctor.post(f"/referrals/{referral.id}/submit")
    assert Referral.get_by_id(referral.id).state == "draft"
    assert "consent is missing or withdrawn" in doctor.get(f"/referrals/{referral.id}").get_data(
        as_text=True
    )


def test_coordinator_accepts_inline_and_gets_the_updated_row(coordinator, patient):
    r = submitted(patient)
    form = coordinator.get(f"/referrals/{r.id}/accept", headers=HX)
    body = form.get_data(as_text=True)
    assert body.startswith(f'\n\n<tbody id="referral-{r.id}"') or f'id="referral-{r.id}"' in body
    assert "<html" not in body and 'name="appointment_at"' in body
    response = coordinator.post(
        f"/referrals/{r.id}/accept",
        data={"appointment_at": f"{SOON}T09:30", "appointment_place": "3/F"},
        headers=HX,
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert f'<tbody id="referral-{r.id}"' in body and "Accepted" in body
    events = json.loads(response.headers["HX-Trigger"])
    assert events["counts-changed"] is True
    assert events["flash"][0]["message"] == "Referral accepted."
    stored = Referral.get_by_id(r.id)
    # 09:30 in Hong Kong is 01:30 UTC.
    assert stored.appointment_at == dt.datetime.combine(SOON, dt.time(1, 30))


def test_inline_accept_without_time_returns_the_row_form_with_the_message(coordinator, patient):
    r = submitted(patient)
    response = coordinator.post(
        f"/referrals/{r.id}/accept",
        data={"appointment_place": "Room 9"},
        headers=HX,
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Give the appointment time." in body and 'value="Room 9"' in body
    assert Referral.get_by_id(r.id).state == "submitted"


def test_a_late_second_decision_sees_the_current_state(login, patient):
    r = submitted(patient)
    first, second = login("coordinator@hub.demo"), login("coordinator@hub.demo")
    second.get(f"/referrals/{r.id}/decline", headers=HX)
    first.post(f"/referrals/{r.id}/decline", data={"reason": "Full"}, headers=HX)
    late = second.post(f"/referrals/{r.id}/decline", data={"reason": "Also full"}, headers=HX)
    assert "Declined" in late.get_data(as_text=True)
    assert "Not possible" in json.loads(late.headers["HX-Trigger"])["flash"][0]["message"]
    assert ReferralEvent.select().where(ReferralEvent.action == "decline").count() == 1


def test_ask_answer_accept_back_referral_acknowledge_through_the_pages(
    doctor, coordinator, specialist, patient
):
    r = submitted(patient)
    coordinator.post(f"/referrals/{r.id}/request-info", data={"question": "Latest ECG?"})
    outbox = doctor.get("/referrals/?needs=1").get_data(as_text=True)
    assert "Latest ECG?" in outbox and "Information requested" in outbox
    assert doctor.post(f"/referrals/{r.id}/answer", data={"answer": "ST depression"}).status_code
    accept = {"appointment_at": f"{SOON}T09:30", "appointment_place": "Cardiology 3/F"}
    coordinator.post(f"/referrals/{r.id}/accept", data=accept)
    specialist.post(
        f"/referrals/{r.id}/back-referral",
        data={
            "br_diagnosis": "Stable angina",
            "br_medication_changes": "Add aspirin 80 mg",
            "br_follow_up_plan": "Lipids in 3 months",
            "br_follow_up_due": "2027-03-01",
        },
    )
    page = doctor.get(f"/referrals/{r.id}").get_data(as_text=True)
    assert "Stable angina" in page and "Dr LAM Chi Keung" in page
    doctor.post(f"/referrals/{r.id}/acknowledge")
    stored = Referral.get_by_id(r.id)
    assert stored.state == "closed"
    assert stored.br_follow_up_due == dt.date(2027, 3, 1)
    assert [e.action for e in stored.timeline()] == [
        "create", "submit", "request_info", "answer", "accept", "back_referral", "acknowledge",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "url",
    ["/referrals/{id}", "/referrals/{id}/letter", "/referrals/{id}/fhir", "/referrals/{id}/row"],
)
def test_another_clinic_gets_404_and_the_attempt_is_audited(other_clinic_doctor, patient, url):
    r = submitted(patient)
    response = other_clinic_doctor.get(url.format(id=r.id))
    assert response.status_code == 404
    denied = AuditEvent.get(AuditEvent.action == "access_denied")
    assert (denied.object_type, denied.object_id) == ("referral", str(r.id))
    assert "林美玉" not in other_clinic_doctor.get("/referrals/").get_data(as_text=True)


def test_another_clinic_cannot_move_a_referral(other_clinic_doctor, patient):
    r = submitted(patient)
    response = other_clinic_doctor.post(f"/referrals/{r.id}/cancel", data={"reason": "x"})
    assert response.status_code == 404
    assert Referral.get_by_id(r.id).state == "submitted"


def test_a_hub_sees_only_referrals_addressed_to_it(app, coordinator, patient):
    other_hub = Organisation.create(name="Other Hub", kind="hub")
    r = submitted(patient)
    Referral.update(to_org=other_hub).where(Referral.id == r.id).execute()
    assert coordinator.get(f"/referrals/{r.id}").status_code == 404


def test_roles_without_referrals_are_refused(pharmacist, nurse, patient):
    r = submitted(patient)
    assert pharmacist.get("/referrals/").status_code == 403
    assert nurse.get(f"/referrals/{r.id}").status_code == 200
    assert nurse.post(f"/referrals/{r.id}/cancel", data={"reason": "x"}).status_code == 403


def test_badge_counts_what_waits_and_answers_204_when_unchanged(doctor, coordinator, patient):
    r = submitted(patient)
    waiting = Referral.awaiting(user("coordinator@hub.demo")).count()
    badge = coordinator.get("/today/counts", headers=HX)
    assert f">{waiting}</span>" in badge.get_data(as_text=True)
    seen = re.search(r"/today/counts\?v=([^\"]+)", badge.get_data(as_text=True)).group(1)
    poll = {**HX, "X-Clinic-Poll": "1"}
    assert coordinator.get(f"/today/counts?v={seen}", headers=poll).status_code == 204
    coordinator.post(f"/referrals/{r.id}/request-info", data={"question": "?"})
    assert coordinator.get(f"/today/counts?v={seen}", headers=poll).status_code == 200
    assert "needs=1" in doctor.get("/today").get_data(as_text=True)


def test_the_list_poll_answers_204_until_something_changes(coordinator, patient):
    r = submitted(patient)
    page = coordinator.get("/referrals/").get_data(as_text=True)
    poll_url = page.split('id="referral-rows" class="table-wrap" data-poll hx-get="')[1]
    poll_url = poll_url.split('"')[0].replace("&amp;", "&")
    poll = {**HX, "X-Clinic-Poll": "1"}
    assert coordinator.get(poll_url, headers=poll).status_code == 204
    user_ = user("coordinator@hub.demo")
    Referral.get_by_id(r.id).request_info(user_, "?")
    changed = coordinator.get(poll_url, headers=poll)
    assert changed.status_code == 200 and "Information requested" in changed.get_data(as_text=True)


def test_inbox_filters_and_sorts_overdue_first(coordinator, make_patient):
    green = submitted(make_patient(chinese_name="綠通道"), priority="green")
    late = submitted(make_patient(chinese_name="過期者"), priority="routine")
    Referral.update(due_by=utcnow() - dt.timedelta(hours=1)).where(Referral.id == late.id).execute()
    page = coordinator.get("/referrals/?state=submitted").get_data(as_text=True)
    assert page.index("過期者") < page.index("綠通道")
    assert "Overdue" in page
    only_green = coordinator.get("/referrals/?priority=green", headers=HX).get_data(as_text=True)
    assert "綠通道" in only_green and "過期者" not in only_green
    assert str(green.id) in only_green


def test_down_referral_from_the_hub_is_accepted_by_a_clinic(
    specialist, other_clinic_doctor, make_patient
):
    patient = make_patient(documents=[("hkid", "X3546700")])
    r = submitted(patient)
    r.accept(user("coordinator@hub.demo"), utcnow(), "Room 1")
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    response = specialist.post(
        f"/referrals/{r.id}/down",
        data={
            "clinic": huangge.id, "priority": "routine", "reason": "Community follow-up",
            "consent_given": "y",
        },
    )  # fmt: skip
    assert response.status_code == 303
    down = Referral.get(Referral.direction == "down", Referral.patient == patient)
    outbox = other_clinic_doctor.get("/referrals/?needs=1").get_data(as_text=True)
    assert "Down-referral" in outbox and "Accept into our register" in outbox
    other_clinic_doctor.post(f"/referrals/{down.id}/accept-down")
    down = Referral.get_by_id(down.id)
    assert down.state == "accepted"
    assert down.clinic_patient.clinic_id == huangge.id
    assert [d.number for d in down.clinic_patient.documents] == ["X3546700"]


def test_printable_letter_has_labels_in_both_languages(doctor, patient):
    r = submitted(patient, working_diagnosis="Angina", icd10="I20.8")
    page = doctor.get(f"/referrals/{r.id}/letter").get_data(as_text=True)
    assert '<span lang="en">Reason for referral</span>' in page
    assert '<span lang="zh-Hant-HK">轉介原因</span>' in page
    Patient.update(preferred_language="zh_Hans_CN").where(Patient.id == patient.id).execute()
    page = doctor.get(f"/referrals/{r.id}/letter").get_data(as_text=True)
    assert '<span lang="zh-Hans-CN">转诊原因</span>' in page
    assert "Chest pain" in page


def test_hub_sees_the_patient_only_through_a_referral_while_it_matters(
    app, doctor, coordinator, patient
):
    assert coordinator.get(f"/patients/{patient.id}").status_code == 404
    draft = Referral.create_draft(
        user("doctor@jinzhou.demo"), patient, to_org=Organisation.by_name(HUB), reason="x"
    )
    assert coordinator.get(f"/patients/{patient.id}").status_code == 404
    draft.submit(user("doctor@jinzhou.demo"))
    assert coordinator.get(f"/patients/{patient.id}").status_code == 200
    draft.cancel(user("doctor@jinzhou.demo"), "Not needed")
    assert coordinator.get(f"/patients/{patient.id}").status_code == 200  # closed recently
    days = app.config["HUB_ACCESS_DAYS_AFTER_CLOSE"] + 1
    Referral.update(updated_at=utcnow() - dt.timedelta(days=days)).execute()
    assert coordinator.get(f"/patients/{patient.id}").status_code == 404
    denied = (
        AuditEvent.select()
        .where(AuditEvent.action == "access_denied")
        .order_by(AuditEvent.id.desc())
    )
    assert denied.first().object_id == str(patient.id)


def test_a_draft_can_be_edited_then_submitted_but_not_after(doctor, coordinator, patient):
    doctor.post(f"/referrals/new?patient={patient.id}", data=referral_form(send="draft"))
    referral = Referral.get(Referral.patient == patient)
    page = doctor.get(f"/referrals/{referral.id}/edit").get_data(as_text=True)
    assert "Exertional chest pain" in page and "Edit draft" in page
    changed = referral_form(reason="Chest pain at rest now", priority="green", send="submit")
    assert doctor.post(f"/referrals/{referral.id}/edit", data=changed).status_code == 303
    stored = Referral.get_by_id(referral.id)
    assert (stored.reason, stored.priority, stored.state) == (
        "Chest pain at rest now",
        "green",
        "submitted",
    )
    late = doctor.post(f"/referrals/{referral.id}/edit", data=changed | {"reason": "Other"})
    assert late.status_code == 303
    assert Referral.get_by_id(referral.id).reason == "Chest pain at rest now"
    assert coordinator.get(f"/referrals/{referral.id}/edit").status_code == 403


def test_the_patient_page_offers_refer_and_lists_the_patients_referrals(doctor, nurse, patient):
    r = submitted(patient)
    page = doctor.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert f'href="/referrals/new?patient={patient.id}"' in page
    assert f'href="/referrals/{r.id}"' in page and "Submitted" in page
    nurse_page = nurse.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert f'href="/referrals/{r.id}"' in nurse_page
    assert "/referrals/new?patient=" not in nurse_page  # only doctors refer


def test_a_busy_inbox_pages_so_no_referral_is_out_of_reach(app, coordinator, patient):
    from clinic.referrals.views import LIST_SIZE

    with app.app_context():
        ids = {submitted(patient).id for _ in range(LIST_SIZE + 3)}
    first = coordinator.get("/referrals/?state=submitted").get_data(as_text=True)
    assert "Next page" in first and "Previous page" not in first
    second = coordinator.get("/referrals/?state=submitted&page=2").get_data(as_text=True)
    assert "Previous page" in second and "Next page" not in second
    shown = {int(i) for page in (first, second) for i in re.findall(r'/referrals/(\d+)"', page)}
    assert ids <= shown


def test_hub_access_to_every_view_of_a_closed_referral_ends_with_the_window(
    app, login, doctor, patient
):
    referral = submitted(patient)
    referral.cancel(user("doctor@jinzhou.demo"), "Not needed")
    urls = [f"/referrals/{referral.id}{tail}" for tail in ("", "/row", "/letter", "/fhir")]
    coordinator = login("coordinator@hub.demo")
    assert [coordinator.get(url).status_code for url in urls] == [200] * 4
    with past_access_window(app):
        coordinator = login("coordinator@hub.demo")
        denied_before = AuditEvent.select().where(AuditEvent.action == "access_denied").count()
        assert [coordinator.get(url).status_code for url in urls] == [404] * 4
        denied = AuditEvent.select().where(AuditEvent.action == "access_denied").count()
        assert denied - denied_before == len(urls)
        assert "林美玉" not in coordinator.get("/referrals/").get_data(as_text=True)
        assert coordinator.get(f"/patients/{patient.id}").status_code == 404
        # The patient's own clinic keeps its referral.
        assert login("doctor@jinzhou.demo").get(urls[0]).status_code == 200


def down_form(clinic, **fields):
    return {"clinic": clinic.id, "priority": "routine", "reason": "Community follow-up", **fields}


def test_a_down_referral_comes_only_from_a_referral_the_hub_took_on(specialist, patient):
    jinzhou = Organisation.by_name("Jinzhou Family-Doctor Clinic")
    waiting = submitted(patient)
    assert specialist.get(f"/referrals/{waiting.id}/down").status_code == 404
    assert (
        specialist.post(f"/referrals/{waiting.id}/down", data=down_form(jinzhou)).status_code == 404
    )
    waiting.decline(user("coordinator@hub.demo"), "Not for us")
    assert specialist.get(f"/referrals/{waiting.id}/down").status_code == 404
    taken = submitted(patient)
    taken.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    assert specialist.get(f"/referrals/{taken.id}/down").status_code == 200
    shown = AuditEvent.select().order_by(AuditEvent.id.desc()).first()
    assert (shown.action, shown.object_id, shown.detail) == (
        "view",
        str(taken.id),
        "down-referral form",
    )
    assert Referral.select().where(Referral.parent.is_null(False)).count() == 0


def test_a_down_referral_to_another_clinic_needs_consent_naming_it(specialist, patient):
    source = submitted(patient)
    source.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    refused = specialist.post(f"/referrals/{source.id}/down", data=down_form(huangge))
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "consent naming it" in page and "Community follow-up" in page
    assert Referral.select().where(Referral.parent == source).count() == 0
    jinzhou = Organisation.by_name("Jinzhou Family-Doctor Clinic")
    assert (
        specialist.post(f"/referrals/{source.id}/down", data=down_form(jinzhou)).status_code == 303
    )
    given = down_form(huangge, consent_given="y")
    assert specialist.post(f"/referrals/{source.id}/down", data=given).status_code == 303
    named = Consent.get(Consent.patient == patient, Consent.scope == "share_with_clinic")
    assert named.organisation_id == huangge.id
    down = Referral.get(Referral.direction == "down", Referral.to_org == huangge)
    assert down.consent_id == named.id


def test_a_cancelled_down_referral_does_not_extend_hub_access(app, login, patient):
    source = submitted(patient)
    source.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(hours=1), "Room 1")
    source.back_referral(user("specialist@hub.demo"), br_diagnosis="Stable angina")
    source.acknowledge(user("doctor@jinzhou.demo"))
    jinzhou = Organisation.by_name("Jinzhou Family-Doctor Clinic")
    with past_access_window(app, extra_days=-1):  # the last day of the hub's access
        specialist = login("specialist@hub.demo")
        assert (
            specialist.post(f"/referrals/{source.id}/down", data=down_form(jinzhou)).status_code
            == 303
        )
        down = Referral.get(Referral.parent == source)
        cancel = {"reason": "Sent by mistake"}
        assert specialist.post(f"/referrals/{down.id}/cancel", data=cancel).status_code == 303
        assert Referral.get_by_id(down.id).state == "cancelled"
    with past_access_window(app, extra_days=1):
        specialist = login("specialist@hub.demo")
        assert specialist.get(f"/patients/{patient.id}").status_code == 404
        assert specialist.get(f"/referrals/{down.id}").status_code == 404
        assert specialist.get(f"/referrals/{source.id}").status_code == 404


def test_withdrawn_consent_stops_the_referral_and_the_hub(login, nurse, patient):
    consent = Consent.create(
        patient=patient, scope="cross_border", recorded_by=user("doctor@jinzhou.demo")
    )
    referral = submitted(patient, service=service("crossborder"), consent=consent)
    coordinator = login("coordinator@hub.demo")
    assert coordinator.get(f"/referrals/{referral.id}").status_code == 200
    response = nurse.post(f"/patients/{patient.id}/consents/{consent.id}/withdraw")
    assert response.status_code == 303
    stopped = Referral.get_by_id(referral.id)
    assert stopped.state == "cancelled" and "withdrew their consent" in stopped.cancel_reason
    page = login("doctor@jinzhou.demo").get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert "withdrew their consent" in page
    assert [e.action for e in stopped.timeline()][-1] == "stop_for_consent"
    hub_page = coordinator.get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert "Stopped: consent withdrawn" in hub_page and "林美玉" not in hub_page  # redacted
    assert coordinator.get(f"/patients/{patient.id}").status_code == 404
    assert "林美玉" not in coordinator.get("/referrals/").get_data(as_text=True)


PATIENT_DATA = (
    "林美玉", "LAM, Mei Yuk", "A123456", "6222", "1948", "Zoster-like rash", "Chest pain",
)  # fmt: skip


def test_the_hub_reads_a_referral_stopped_for_consent_without_the_patient(
    app, login, nurse, make_patient
):
    patient = make_patient(
        chinese_name="林美玉", english_name="LAM, Mei Yuk", documents=[("hkid", "A1234563")],
        phone="+85262223333", date_of_birth=dt.date(1948, 3, 9),
    )  # fmt: skip
    consent = Consent.create(
        patient=patient, scope="cross_border", recorded_by=user("doctor@jinzhou.demo")
    )
    referral = submitted(
        patient, service=service("crossborder"), consent=consent,
        clinical_summary="Zoster-like rash, 3 days",
    )  # fmt: skip
    coordinator = login("coordinator@hub.demo")
    assert "林美玉" in coordinator.get(f"/referrals/{referral.id}").get_data(as_text=True)
    nurse.post(f"/patients/{patient.id}/consents/{consent.id}/withdraw")
    withdrawn_on = Consent.get_by_id(consent.id).withdrawn_at
    with app.test_request_context():
        day = format_date(withdrawn_on)
    reason = f"The patient withdrew their consent on {day}."
    # The hub: the state and the reason, on the page, the row and the inbox; no patient data.
    page = coordinator.get(f"/referrals/{referral.id}")
    row = coordinator.get(f"/referrals/{referral.id}/row", headers=HX)
    inbox = coordinator.get("/referrals/?state=all")
    for response in (page, row, inbox):
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "Stopped: consent withdrawn" in body and "Cancelled" in body
        assert f"#{referral.id}" in body
        for value in PATIENT_DATA:  # as a value of its own: not the digits of a timestamp
            assert not re.search(rf"(?<!\d){re.escape(value)}(?!\d)", body), value
    assert reason in page.get_data(as_text=True)
    assert day in row.get_data(as_text=True)
    viewed = AuditEvent.select().where(
        AuditEvent.object_id == str(referral.id), AuditEvent.detail.contains("redacted")
    )
    assert viewed.count() == 2
    # Nothing that carries the patient opens for the hub.
    for url in (
        f"/patients/{patient.id}", f"/referrals/{referral.id}/letter",
        f"/referrals/{referral.id}/fhir", f"/referrals/{referral.id}/accept",
    ):  # fmt: skip
        assert coordinator.get(url).status_code == 404, url
    # The referring clinic reads the same reason beside the whole referral.
    clinic_page = login("doctor@jinzhou.demo").get(f"/referrals/{referral.id}")
    assert reason in clinic_page.get_data(as_text=True)
    assert "林美玉" in clinic_page.get_data(as_text=True)


def test_a_referral_cancelled_before_the_withdrawal_is_not_read_as_stopped_for_it(
    login, nurse, patient
):
    consent = Consent.create(
        patient=patient, scope="cross_border", recorded_by=user("doctor@jinzhou.demo")
    )
    referral = submitted(patient, service=service("crossborder"), consent=consent)
    referral.cancel(user("doctor@jinzhou.demo"), "Patient went to another hospital")
    nurse.post(f"/patients/{patient.id}/consents/{consent.id}/withdraw")
    assert login("coordinator@hub.demo").get(f"/referrals/{referral.id}").status_code == 404
    page = login("doctor@jinzhou.demo").get(f"/referrals/{referral.id}").get_data(as_text=True)
    assert "Patient went to another hospital" in page and "Stopped: consent withdrawn" not in page


def test_withdrawing_the_consent_naming_a_clinic_stops_the_down_referral(
    login, specialist, patient
):
    source = submitted(patient)
    source.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    specialist.post(f"/referrals/{source.id}/down", data=down_form(huangge, consent_given="y"))
    down = Referral.get(Referral.parent == source)
    assert down.state == "submitted"
    response = login("nurse@jinzhou.demo").post(
        f"/patients/{patient.id}/consents/{down.consent_id}/withdraw", follow_redirects=True
    )
    assert "Stopped what relied on it: 1." in response.get_data(as_text=True)
    stopped = Referral.get_by_id(down.id)
    assert stopped.state == "cancelled" and "withdrew their consent" in stopped.cancel_reason
    assert [e.action for e in stopped.timeline()][-1] == "stop_for_consent"
    assert Referral.get_by_id(source.id).state == "accepted"  # the up-referral relied on none
    # Both parties of the down-referral read why it stopped, and nothing about the patient.
    for email in ("doctor@huangge.demo", "specialist@hub.demo"):
        body = login(email).get(f"/referrals/{down.id}").get_data(as_text=True)
        assert "Stopped: consent withdrawn" in body and "林美玉" not in body, email
    assert login("doctor@huangge.demo").post(f"/referrals/{down.id}/accept-down").status_code == 404


def test_no_hub_move_on_a_referral_whose_consent_was_withdrawn(doctor, patient):
    consent = Consent.create(
        patient=patient, scope="cross_border", recorded_by=user("doctor@jinzhou.demo")
    )
    referral = submitted(patient, service=service("crossborder"), consent=consent)
    consent.withdraw(user("doctor@jinzhou.demo"))  # as a second desk would, just now
    coordinator = user("coordinator@hub.demo")
    assert referral.moves_for(coordinator) == []
    with pytest.raises(Refused, match="consent"):
        referral.accept(coordinator, utcnow() + dt.timedelta(days=1), "Room 1")
    assert Referral.get_by_id(referral.id).state == "submitted"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("9999-12-31T23:59", "At most two years ahead."),
        ("0001-01-01T00:00", "This is in the past."),
        ("1900-01-01T09:00", "This is in the past."),
    ],
)
def test_an_appointment_out_of_bounds_comes_back_with_the_form(
    coordinator, patient, typed, message
):
    r = submitted(patient)
    data = {"appointment_at": typed, "appointment_place": "Room 2"}
    response = coordinator.post(f"/referrals/{r.id}/accept", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and 'value="Room 2"' in page
    assert Referral.get_by_id(r.id).state == "submitted"


def test_a_follow_up_due_date_out_of_bounds_is_refused(specialist, patient):
    r = submitted(patient)
    r.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    for typed in ("9999-12-31", "2001-01-01"):
        data = {"br_diagnosis": "Stable angina", "br_follow_up_due": typed}
        assert specialist.post(f"/referrals/{r.id}/back-referral", data=data).status_code == 422
    assert Referral.get_by_id(r.id).state == "accepted"


def test_an_out_of_range_stored_date_does_not_break_shared_lists(login, patient):
    r = submitted(patient)
    r.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    # A row written before dates were bounded.
    far = dt.datetime(9999, 12, 31, 23, 59)
    Referral.update(appointment_at=far, due_by=far).where(Referral.id == r.id).execute()
    coordinator = login("coordinator@hub.demo")
    for url in ("/today", "/referrals/?needs=1", "/referrals/", f"/referrals/{r.id}"):
        response = coordinator.get(url)
        assert response.status_code == 200, url
        assert "9999-12-31 23:59 UTC" in response.get_data(as_text=True), url
    assert login("doctor@jinzhou.demo").get("/referrals/").status_code == 200


def test_withdrawing_the_consent_naming_a_clinic_ends_its_access(login, specialist, patient):
    source = submitted(patient)
    source.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    specialist.post(f"/referrals/{source.id}/down", data=down_form(huangge, consent_given="y"))
    down = Referral.get(Referral.parent == source)
    other_clinic = login("doctor@huangge.demo")
    assert other_clinic.get(f"/referrals/{down.id}").status_code == 200
    login("nurse@jinzhou.demo").post(f"/patients/{patient.id}/consents/{down.consent_id}/withdraw")
    assert "林美玉" not in other_clinic.get(f"/referrals/{down.id}").get_data(as_text=True)
    assert other_clinic.get(f"/referrals/{down.id}/letter").status_code == 404
    assert login("doctor@jinzhou.demo").get(f"/patients/{patient.id}").status_code == 200


def test_an_appointment_in_the_past_is_refused_with_a_message(coordinator, patient):
    r = submitted(patient)
    response = coordinator.post(
        f"/referrals/{r.id}/accept",
        data={"appointment_at": "2020-01-06T09:30", "appointment_place": "Room 9"},
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "This time has passed: give an appointment still to come." in body
    assert 'value="2020-01-06T09:30"' in body and 'value="Room 9"' in body
    assert Referral.get_by_id(r.id).state == "submitted"


def test_save_as_draft_works_with_an_unfinished_form(doctor, patient):
    cross_border = service("crossborder")  # its consent is not needed for a draft
    response = doctor.post(
        f"/referrals/new?patient={patient.id}",
        data={"service": cross_border.id, "priority": "routine", "send": "draft"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    draft = Referral.get(Referral.patient == patient)
    assert (draft.state, draft.reason) == ("draft", "")
    # Submitting it still needs what a referral must say.
    refused = doctor.post(f"/referrals/{draft.id}/submit", follow_redirects=True)
    assert "Give the reason for referral." in refused.get_data(as_text=True)
    assert Referral.get_by_id(draft.id).state == "draft"
    again = doctor.post(f"/referrals/{draft.id}/edit", data=referral_form(reason=""))
    assert again.status_code == 422
    assert "Give the reason for referral." in again.get_data(as_text=True)


@pytest.mark.parametrize("email", ["doctor@jinzhou.demo", "coordinator@hub.demo"])
def test_every_form_leaves_checking_to_the_server(login, patient, email):
    """novalidate: no "Please fill out this field." bubbles in the browser's language."""
    client = login(email)
    r = submitted(patient)
    pages = [f"/referrals/{r.id}/accept?view=row", f"/referrals/new?patient={patient.id}"]
    responses = [response for _url, response in crawl(client, limit=60)]
    responses += [client.get(url, headers=HX) for url in pages]
    for response in responses:
        for form in re.findall(r"<form\b[^>]*>", response.get_data(as_text=True)):
            assert "novalidate" in form, f"{response.request.path}: {form}"


def test_identity_is_formatted_alike_everywhere_and_the_hub_sees_the_patient_panel(
    coordinator, doctor, make_patient
):
    patient = make_patient(
        documents=[("hkid", "A1234563"), ("mo_id", "12345678")], allergies="Penicillin (rash)"
    )
    r = submitted(patient)
    panel = coordinator.get(f"/referrals/{r.id}").get_data(as_text=True)
    for shown in (
        "A123456(3)",
        "1/234567/8",
        "+852 9123 4567",
        "Male",
        "age ",
        "繁體中文",
        "Penicillin (rash)",
    ):
        assert shown in panel, shown
    assert '<span class="pill danger">Allergies</span>' in panel
    assert "A1234563" not in panel and "+85291234567" not in panel
    letter = doctor.get(f"/referrals/{r.id}/letter").get_data(as_text=True)
    assert "A123456(3)" in letter and "1/234567/8" in letter and "+852 9123 4567" in letter


def test_letters_are_bilingual_side_by_side_and_the_back_referral_goes_hub_to_clinic(
    doctor, patient
):
    doctor_user = user("doctor@jinzhou.demo")
    consent = Consent.create(patient=patient, scope="cross_border", recorded_by=doctor_user)
    r = submitted(patient, consent=consent)
    consent.withdraw(doctor_user.id)
    letter = doctor.get(f"/referrals/{r.id}/letter").get_data(as_text=True)
    pair = '<span class="bi"><span lang="en">{}</span> <span lang="zh-Hant-HK">{}</span></span>'
    assert pair.format("Priority", "優先次序") in letter
    assert pair.format("Urgent", "緊急") in letter  # fixed values in both languages too
    assert pair.format("Withdrawn", "已撤回") in letter  # a withdrawn consent says so
    assert "data-print" in letter
    head = letter[letter.index('class="letter-grid"') :]
    assert head.index("Jinzhou") < head.index("Nansha Hub Hospital")
    Referral.update(
        state="completed", br_diagnosis="Stable angina", br_signed_by=user("specialist@hub.demo"),
        br_signed_at=utcnow(),
    ).where(Referral.id == r.id).execute()  # fmt: skip
    back = doctor.get(f"/referrals/{r.id}/back-referral-letter").get_data(as_text=True)
    grid = back[back.index('class="letter-grid"') :]
    assert grid.index("Nansha Hub Hospital") < grid.index("Jinzhou"), "From the hub, to the clinic"
    assert "data-print" in back


def test_a_decline_waits_on_the_doctor_until_seen_and_can_be_referred_elsewhere(
    doctor, coordinator, patient
):
    r = submitted(patient, clinical_summary="3 weeks", medications="Amlodipine 5 mg daily")
    coordinator.post(f"/referrals/{r.id}/decline", data={"reason": "Not our service"})
    assert f"/referrals/{r.id}" in doctor.get("/referrals/?needs=1").get_data(as_text=True)
    assert f"/referrals/{r.id}" in doctor.get("/today").get_data(as_text=True)
    assert f"/referrals/{r.id}" not in coordinator.get("/referrals/?needs=1").get_data(as_text=True)
    page = doctor.get(f"/referrals/{r.id}").get_data(as_text=True)  # the doctor reads it
    assert "Not our service" in page and "Refer elsewhere" in page
    assert f"/referrals/{r.id}" not in doctor.get("/referrals/?needs=1").get_data(as_text=True)
    assert f"/referrals/{r.id}" not in doctor.get("/today").get_data(as_text=True)
    assert Referral.get_by_id(r.id).state == "declined"
    copied = doctor.post(f"/referrals/{r.id}/refer-elsewhere")
    assert copied.status_code == 303
    draft = Referral.select().where(Referral.patient == patient, Referral.id != r.id).get()
    assert copied.headers["Location"] == f"/referrals/{draft.id}/edit"
    assert (draft.state, draft.reason, draft.clinical_summary, draft.medications) == (
        "draft", "Chest pain", "3 weeks", "Amlodipine 5 mg daily",
    )  # fmt: skip
    assert coordinator.post(f"/referrals/{r.id}/refer-elsewhere").status_code == 403


def test_the_forms_that_answer_a_referral_show_what_it_says(
    doctor, coordinator, specialist, patient
):
    r = submitted(patient, clinical_summary="3 weeks, worse on stairs", medications="Amlodipine")
    for page in (
        coordinator.get(f"/referrals/{r.id}/accept"),
        coordinator.get(f"/referrals/{r.id}/accept?view=row", headers=HX),
    ):
        html = page.get_data(as_text=True)
        assert 'name="appointment_at"' in html
        for said in ("Chest pain", "3 weeks, worse on stairs", "Amlodipine"):
            assert said in html, said
    coordinator.post(f"/referrals/{r.id}/request-info", data={"question": "Latest ECG?"})
    answer = doctor.get(f"/referrals/{r.id}/answer").get_data(as_text=True)
    assert "Latest ECG?" in answer and 'name="answer"' in answer
    doctor.post(f"/referrals/{r.id}/answer", data={"answer": "Normal"})
    coordinator.post(
        f"/referrals/{r.id}/accept", data={"appointment_at": LATER, "appointment_place": "3/F"}
    )
    back = specialist.get(f"/referrals/{r.id}/back-referral").get_data(as_text=True)
    assert "3 weeks, worse on stairs" in back and "Amlodipine" in back and "br_diagnosis" in back


def test_the_back_referral_flows_into_the_record_and_onto_today(doctor, patient):
    from zoneinfo import ZoneInfo

    r = submitted(patient)
    today = dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date()
    Referral.update(
        state="completed", owner=r.from_org_id, br_diagnosis="Stable angina",
        br_medication_changes="Add aspirin 100 mg daily", br_follow_up_plan="Review the ECG",
        br_follow_up_due=today, br_signed_by=user("specialist@hub.demo"), br_signed_at=utcnow(),
    ).where(Referral.id == r.id).execute()  # fmt: skip
    assert "Review the ECG" in doctor.get("/today").get_data(as_text=True)
    doctor.post(f"/referrals/{r.id}/acknowledge")
    page = doctor.get(f"/referrals/{r.id}").get_data(as_text=True)
    assert "Add to the patient's medication list" in page
    assert doctor.post(f"/referrals/{r.id}/apply-medications").status_code == 303
    doctor.post(f"/referrals/{r.id}/apply-medications")  # a second click adds nothing
    medications = Patient.get_by_id(patient.id).medications
    assert medications.startswith("Amlodipine 5 mg daily\nAdd aspirin 100 mg daily (back-referral")
    assert medications.count("aspirin") == 1
    assert AuditEvent.select().where(AuditEvent.action == "medications_applied").count() == 1
    assert "Add to the patient" not in doctor.get(f"/referrals/{r.id}").get_data(as_text=True)
    Referral.update(br_follow_up_due=today + dt.timedelta(days=1)).execute()
    assert "Review the ECG" not in doctor.get("/today").get_data(as_text=True)  # on its day only


def test_each_medication_change_of_a_back_referral_is_offered_and_listed_on_its_own(
    doctor, specialist, nurse, patient
):
    r = submitted(patient)
    r.accept(user("coordinator@hub.demo"), utcnow() + dt.timedelta(days=1), "Room 1")
    form = specialist.get(f"/referrals/{r.id}/back-referral").get_data(as_text=True)
    assert "One change a line: start, stop or change, the drug and the dose." in form
    changes = "- Start aspirin 100 mg daily\nStop amlodipine 5 mg; Increase atorvastatin to 40 mg"
    specialist.post(
        f"/referrals/{r.id}/back-referral",
        data={"br_diagnosis": "Stable angina", "br_medication_changes": changes},
    )
    doctor.post(f"/referrals/{r.id}/acknowledge")
    page = doctor.get(f"/referrals/{r.id}").get_data(as_text=True)
    offered = re.findall(
        r'<input type="checkbox" name="change" value="(\d)" checked> '
        r'<span class="pill med-(\w+)">\w+</span> ([^<]+)</label>',
        page,
    )
    assert offered == [
        ("1", "start", "Start aspirin 100 mg daily"),
        ("2", "stop", "Stop amlodipine 5 mg"),
        ("3", "change", "Increase atorvastatin to 40 mg"),
    ]
    nothing = doctor.post(f"/referrals/{r.id}/apply-medications", data={"offered": "1"})
    assert "Tick the changes" in doctor.get(nothing.headers["Location"]).get_data(as_text=True)
    assert Referral.get_by_id(r.id).br_applied_at is None
    chosen = {"offered": "1", "change": ["1", "3"]}  # one click, the stop left for later
    assert doctor.post(f"/referrals/{r.id}/apply-medications", data=chosen).status_code == 303
    doctor.post(f"/referrals/{r.id}/apply-medications", data=chosen)  # a second click: nothing
    lines = Patient.get_by_id(patient.id).medications.splitlines()
    assert lines[0] == "Amlodipine 5 mg daily" and len(lines) == 3
    assert lines[1].startswith(f"Start aspirin 100 mg daily (back-referral #{r.id}, ")
    assert lines[2].startswith(f"Increase atorvastatin to 40 mg (back-referral #{r.id}, ")
    applied = AuditEvent.select().where(AuditEvent.action == "medications_applied")
    assert [e.detail for e in applied] == [f"referral {r.id}: 1,3"]
    record = nurse.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "Start aspirin 100 mg daily (back-referral" in record
    assert "Stop amlodipine" not in record


def test_the_hub_inbox_is_for_triage(coordinator, doctor, patient, make_patient):
    open_one = submitted(patient)
    reason = "Exertional chest pain for three weeks, now at rest after meals too"
    Referral.update(reason=reason).where(Referral.id == open_one.id).execute()
    declined = submitted(make_patient(chinese_name="李四"))
    declined.decline(user("coordinator@hub.demo"), "Not our service")
    inbox = coordinator.get("/referrals/").get_data(as_text=True)
    assert f'id="referral-{open_one.id}"' in inbox
    assert f'id="referral-{declined.id}"' not in inbox  # closed and declined: under a filter
    assert '<option value="open" selected>Open</option>' in inbox
    assert "Exertional chest pain for three weeks" in inbox  # the start of the reason
    assert f'id="referral-{declined.id}"' in coordinator.get("/referrals/?state=all").text
    assert f'id="referral-{declined.id}"' in coordinator.get("/referrals/?state=declined").text
    assert '<span class="owner">us</span>' in inbox
    assert '<span class="owner">Nansha Hub Hospital</span>' in doctor.get("/referrals/").text
    open_one.accept(user("coordinator@hub.demo"), dt.datetime(APPOINTMENT_YEAR, 1, 5), "3/F")
    named = coordinator.get("/referrals/").get_data(as_text=True)
    assert f'<span class="owner">us · {user("coordinator@hub.demo").name}</span>' in named


def test_a_hub_user_never_meets_a_dead_link_and_reads_the_clinic_by_name(
    specialist, other_clinic_doctor, make_patient
):
    patient = make_patient(documents=[("hkid", "X3546700")])
    r = submitted(patient)
    r.accept(user("coordinator@hub.demo"), utcnow(), "Room 1")
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    specialist.post(
        f"/referrals/{r.id}/down",
        data={
            "clinic": huangge.id, "priority": "routine", "reason": "Community follow-up",
            "consent_given": "y",  # another clinic than the referring one needs the consent
        },
    )  # fmt: skip
    down = Referral.get(Referral.direction == "down", Referral.patient == patient)
    other_clinic_doctor.post(f"/referrals/{down.id}/accept-down")
    down = Referral.get_by_id(down.id)
    for client, expected in (
        (specialist, patient.id),
        (other_clinic_doctor, down.clinic_patient_id),
    ):
        page = client.get(f"/referrals/{down.id}").get_data(as_text=True)
        links = set(re.findall(r'href="(/patients/\d+)"', page))
        assert links == {f"/patients/{expected}"}
        assert all(client.get(link).status_code == 200 for link in links)
    hub_page = specialist.get(f"/referrals/{down.id}").get_data(as_text=True)
    assert "this clinic" not in hub_page
    assert (
        f"Registered at Huangge Family-Doctor Clinic as patient #{down.clinic_patient_id}"
        in hub_page
    )
    assert "Registered at this clinic" in other_clinic_doctor.get(f"/referrals/{down.id}").text
