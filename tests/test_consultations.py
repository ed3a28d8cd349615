"""Drug consultations: asking (exactly once), the moves, the answer of approved phrases, the
second check, need to know, the library, the sheet, FHIR, Today and the patient page."""

import datetime as dt
import re

import pytest
from fhirclient.models.bundle import Bundle

from clinic.db import utcnow
from clinic.models import (
    AuditEvent,
    Consent,
    Consultation,
    ConsultationEvent,
    GuidanceLine,
    Organisation,
    Patient,
    Phrase,
    Referral,
)
from clinic.models.consultations import CONSULTATION_STATES, answer_due
from clinic.workflow import Conflict, Refused

from conftest import past_access_window, user

HX = {"HX-Request": "true"}
NURSE, PHARMACIST, PHARMACIST_TWO = (
    "nurse@jinzhou.demo",
    "pharmacist@hub.demo",
    "pharmacist2@hub.demo",
)
HUB = "Nansha Hub Hospital"


def phrases(app) -> dict:
    """Two approved phrases of each kind the answer uses (written by one pharmacist, approved by
    the other), by kind."""
    texts = {
        "dose": [
            ("Take 1 tablet", "每次服一粒", "每次服一片"),
            ("Take 2 tablets", "每次服兩粒", "每次服两片"),
        ],
        "frequency": [
            ("once a day", "每日一次", "每日一次"),
            ("twice a day", "每日兩次", "每日两次"),
        ],
        "route": [("by mouth", "口服", "口服")],
        "timing": [("after food", "飯後服", "饭后服"), ("at bedtime", "睡前服", "睡前服")],
        "duration": [("for 7 days", "連服七日", "连服七日")],
        "warning": [("May cause drowsiness", "可能引致睡意", "可能引起嗜睡")],
    }
    made = {}
    with app.test_request_context():
        writer, second = user(PHARMACIST), user(PHARMACIST_TWO)
        for kind, rows in texts.items():
            for en, hant, hans in rows:
                phrase = Phrase.write(writer, kind, en, hant, hans)
                phrase.approve(second)
                made.setdefault(kind, []).append(phrase)
    return made


def ask(app, patient=None, **fields) -> Consultation:
    values = {
        "drug_text": "Amlodipine", "question_type": "equivalent", "urgency": "routine",
        "details": "Mainland brand 络活喜: Hong Kong equivalent?",
    } | fields  # fmt: skip
    with app.test_request_context():
        hub = Organisation.by_name(HUB)
        return Consultation.ask(user(NURSE), hub, patient, **values)


def fresh(consultation) -> Consultation:
    return Consultation.get_by_id(consultation.id)


def ask_form(patient, **fields) -> dict:
    hub = Organisation.by_name(HUB)
    return {
        "hub": hub.id, "patient": patient.id if patient else "", "drug_text": "Metformin",
        "where_registered": "both", "question_type": "availability", "urgency": "same_day",
        "details": "Is the same brand available here?", "patient_specific": "y",
        "medications": "Metformin 500 mg bd", "allergies": "", "pregnancy": "no",
        "submission_key": "k-" + fields.pop("key", "one"),
    } | fields  # fmt: skip


# ---- asking -------------------------------------------------------------------------------
def test_the_ask_form_prefills_the_record_shows_similar_answers_then_sends_once(
    app, login, make_patient
):
    nurse = login(NURSE)
    patient = make_patient(medications="Metformin 500 mg bd", allergies="Penicillin")
    page = nurse.get(f"/consultations/new?patient={patient.id}").get_data(as_text=True)
    assert "Metformin 500 mg bd" in page and "Penicillin" in page
    assert "novalidate" in page and 'autocomplete="off"' in page
    past = ask(app, patient, drug_text="Metformin", question_type="availability")
    with app.test_request_context():
        past.claim(user(PHARMACIST))
        app.config["CONSULTATION_SECOND_CHECK"] = False
        past.answer(user(PHARMACIST), [], "Available as Glucophage.", [])
    before = Consultation.select().count()
    review = nurse.post("/consultations/new", data=ask_form(patient))
    assert review.status_code == 200
    text = review.get_data(as_text=True)
    assert "Similar past answers" in text and "Available as Glucophage." in text
    assert "Withdraw the question" in text and 'name="confirm" type="hidden" value="1"' in text
    assert Consultation.select().count() == before  # nothing sent yet
    data = ask_form(patient, confirm="1")
    first = nurse.post("/consultations/new", data=data)
    again = nurse.post("/consultations/new", data=data)  # a double click
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    sent = Consultation.select().where(Consultation.id > past.id)
    assert sent.count() == 1
    consultation = sent.get()
    assert (consultation.state, consultation.owner_id) == ("open", Organisation.by_name(HUB).id)
    assert (
        consultation.patient_id == patient.id and consultation.medications == "Metformin 500 mg bd"
    )
    assert Patient.get_by_id(patient.id).medications == "Metformin 500 mg bd"  # record unchanged
    assert (
        ConsultationEvent.select().where(ConsultationEvent.consultation == consultation).count()
        == 1
    )


def test_bad_input_keeps_what_was_typed_with_messages_in_the_users_language(
    app, login, make_patient
):
    nurse = login(NURSE)
    nurse.post("/language", data={"lang": "zh_Hant_HK"})
    patient = make_patient()
    before = Consultation.select().count()
    data = ask_form(patient, details="", question_type="", drug_text="Mystery drug X")
    response = nurse.post("/consultations/new", data=data)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Mystery drug X" in text and "Write the question." not in text
    long = nurse.post("/consultations/new", data=ask_form(patient, details="x" * 4001))
    assert long.status_code == 422 and "4000" in long.get_data(as_text=True)
    assert Consultation.select().count() == before


def test_each_choice_of_the_ask_form_is_a_labelled_button_in_a_named_group(app, login):
    nurse = login(NURSE)
    nurse.post("/language", data={"lang": "zh_Hans_CN"})
    page = nurse.get("/consultations/new").get_data(as_text=True)
    for legend, choice in (("注册地", "内地"), ("紧急程度", "当日")):
        group = re.search(
            r"<fieldset[^>]*><legend>" + legend + r"</legend>(.*?)</fieldset>", page, re.S
        )
        assert group, legend
        assert re.search(r'<label class="check"><input[^>]*type="radio"[^>]*> ' + choice, group[1])
        assert "<ul" not in group[1]


def test_a_drug_not_in_the_catalogue_is_allowed_but_marked(app, login, make_patient):
    nurse = login(NURSE)
    patient = make_patient()
    review = nurse.post("/consultations/new", data=ask_form(patient, drug_text="Zzyzxamine"))
    assert review.status_code == 200 and 'id="not-in-catalogue"' in review.get_data(as_text=True)
    sent = nurse.post(
        "/consultations/new", data=ask_form(patient, drug_text="Zzyzxamine", confirm="1")
    )
    assert sent.status_code == 303
    page = nurse.get(sent.headers["Location"]).get_data(as_text=True)
    assert "Not in the catalogue" in page


def test_due_by_follows_the_urgency_in_the_hubs_time_zone(app):
    now = dt.datetime(2026, 3, 2, 1, 0)  # 09:00 in Hong Kong
    with app.app_context():
        assert answer_due("immediate", now, "Asia/Hong_Kong") == now + dt.timedelta(hours=1)
        assert answer_due("same_day", now, "Asia/Hong_Kong") == dt.datetime(2026, 3, 2, 10, 0)
        late = dt.datetime(2026, 3, 2, 8, 0)  # 16:00 in Hong Kong: 18:00 is too soon
        assert answer_due("same_day", late, "Asia/Hong_Kong") == late + dt.timedelta(hours=4)
        assert answer_due("routine", now, "Asia/Hong_Kong") == now + dt.timedelta(days=3)
        app.config["CONSULTATION_DUE"] = {"immediate_hours": 2}
        assert answer_due("immediate", now, "Asia/Hong_Kong") == now + dt.timedelta(hours=2)


# ---- the moves ----------------------------------------------------------------------------
def test_claim_and_release_inline_refresh_the_counts(app, login, make_patient, demo_data):
    consultation = ask(app, make_patient(), urgency="immediate")
    pharmacist = login(PHARMACIST)
    queue = pharmacist.get("/consultations/").get_data(as_text=True)
    assert f"consultation-{consultation.id}" in queue and 'hx-post="/consultations/' in queue
    row = pharmacist.post(f"/consultations/{consultation.id}/claim", headers=HX)
    assert row.status_code == 200 and "<html" not in row.get_data(as_text=True)
    assert "counts-changed" in row.headers["HX-Trigger"]
    assert fresh(consultation).state == "claimed"
    assert fresh(consultation).claimed_by_id == user(PHARMACIST).id
    second = login(PHARMACIST_TWO)
    lost = second.post(f"/consultations/{consultation.id}/claim", headers=HX)
    assert "Claimed" in lost.headers["HX-Trigger"] or "claimed" in lost.headers["HX-Trigger"]
    assert fresh(consultation).claimed_by_id == user(PHARMACIST).id
    back = pharmacist.post(f"/consultations/{consultation.id}/release", headers=HX)
    assert back.status_code == 200 and fresh(consultation).state == "open"
    assert fresh(consultation).claimed_by_id is None


def test_an_illegal_move_is_refused_with_the_current_state(app, make_patient, demo_data):
    consultation = ask(app, make_patient())
    with app.test_request_context():
        with pytest.raises(Refused, match="Not possible"):
            consultation.acknowledge(user(NURSE))
        stale = fresh(consultation)
        consultation.claim(user(PHARMACIST))
        with pytest.raises(Conflict, match="Claimed"):
            stale.claim(user(PHARMACIST_TWO))
        with pytest.raises(Refused):
            consultation.cancel(user(NURSE), "no longer needed")  # only while open


def test_the_polled_queue_answers_204_until_something_changes(app, login, make_patient, demo_data):
    ask(app, make_patient())
    pharmacist = login(PHARMACIST)
    page = pharmacist.get("/consultations/").get_data(as_text=True)
    polled = (
        re.search(r'hx-get="(/consultations/\?[^"]*v=[^"]+)"', page).group(1).replace("&amp;", "&")
    )
    assert pharmacist.get(polled, headers=HX).status_code == 204
    ask(app, make_patient(english_name="LEE, Siu Ming"))
    assert pharmacist.get(polled, headers=HX).status_code == 200


def test_full_walk_with_information_two_lines_and_a_second_check(app, login, make_patient):
    made = phrases(app)
    patient = make_patient(preferred_language="zh_Hans_CN")
    consultation = ask(app, patient)
    pharmacist, nurse = login(PHARMACIST), login(NURSE)
    url = f"/consultations/{consultation.id}"
    assert pharmacist.post(f"{url}/claim").status_code == 303
    assert pharmacist.post(f"{url}/request-info", data={"question": ""}).status_code == 422
    pharmacist.post(f"{url}/request-info", data={"question": "Blood pressure today?"})
    assert fresh(consultation).owner_id == patient.clinic_id  # the clinic's move now
    nurse.post(f"{url}/give-info", data={"answer": "150/95"})
    assert (fresh(consultation).state, fresh(consultation).info_answer) == ("claimed", "150/95")
    empty = pharmacist.post(f"{url}/answer", data={"note": ""})
    assert empty.status_code == 422 and "at least one guidance line" in empty.get_data(as_text=True)
    answer = {
        "lines-0-drug_text": "Amlodipine", "lines-0-dose": made["dose"][0].id,
        "lines-0-frequency": made["frequency"][0].id, "lines-0-timing": made["timing"][0].id,
        "lines-1-drug_text": "Amlodipine", "lines-1-warning": made["warning"][0].id,
        "note": "Norvasc 5 mg is the same molecule.", "references-0-title": "HK Drug Formulary",
        "references-0-source": "HA", "references-0-link": "",
    }  # fmt: skip
    assert pharmacist.post(f"{url}/answer", data=answer).status_code == 303
    assert fresh(consultation).state == "checking"
    assert "Norvasc" not in nurse.get(url).get_data(as_text=True)  # not before the check
    assert pharmacist.post(f"{url}/second-check").status_code == 303
    assert fresh(consultation).state == "checking"  # the answering pharmacist cannot check
    login(PHARMACIST_TWO).post(f"{url}/second-check")
    done = fresh(consultation)
    assert (done.state, done.checked_by_id) == ("answered", user(PHARMACIST_TWO).id)
    page = nurse.get(url).get_data(as_text=True)
    assert ("Norvasc" in page and "每次服一粒" not in page) or "Take 1 tablet" in page
    lines = list(GuidanceLine.select().where(GuidanceLine.consultation == consultation.id))
    assert len(lines) == 2 and lines[0].dose_id == made["dose"][0].id
    sheet = nurse.get(f"{url}/sheet").get_data(as_text=True)
    assert "每次服一片" in sheet and "Take 1 tablet" in sheet  # Simplified + English
    assert nurse.post(f"{url}/acknowledge").status_code == 303
    assert fresh(consultation).state == "acknowledged" and fresh(consultation).owner_id is None
    events = ConsultationEvent.select().where(ConsultationEvent.consultation == consultation.id)
    actions = [e.action for e in events.order_by(ConsultationEvent.id)]
    assert actions == ["ask", "claim", "request_info", "give_info", "answer_for_check",
                       "second_check", "acknowledge"]  # fmt: skip


def test_an_unapproved_or_superseded_phrase_sent_by_hand_is_refused(app, login, make_patient):
    made = phrases(app)
    with app.test_request_context():
        draft = Phrase.write(user(PHARMACIST), "dose", "Take 5 tablets", "每次服五粒", "每次服五片")
        old = made["dose"][1]
        newer = old.revise(user(PHARMACIST), "Take two tablets", "每次服兩粒", "每次服两片")
        newer.approve(user(PHARMACIST_TWO))
    consultation = ask(app, make_patient())
    pharmacist = login(PHARMACIST)
    url = f"/consultations/{consultation.id}"
    pharmacist.post(f"{url}/claim")
    for phrase in (draft, old):
        response = pharmacist.post(f"{url}/answer", data={"lines-0-dose": phrase.id})
        assert response.status_code == 422, phrase.state
        assert fresh(consultation).state == "claimed"
    kind = pharmacist.post(f"{url}/answer", data={"lines-0-dose": made["timing"][0].id})
    assert kind.status_code == 422


def test_without_a_second_check_the_answer_goes_straight_to_the_clinic(app, login, make_patient):
    app.config["CONSULTATION_SECOND_CHECK"] = []  # no hub checks
    consultation = ask(app, make_patient())
    pharmacist = login(PHARMACIST)
    url = f"/consultations/{consultation.id}"
    pharmacist.post(f"{url}/claim")
    pharmacist.post(f"{url}/answer", data={"note": "Yes, available."})
    assert fresh(consultation).state == "answered"


def test_the_asker_cancels_an_open_question_with_a_reason(app, login, make_patient):
    consultation = ask(app, make_patient())
    nurse = login(NURSE)
    url = f"/consultations/{consultation.id}"
    assert nurse.post(f"{url}/cancel", data={"reason": ""}).status_code == 422
    nurse.post(f"{url}/cancel", data={"reason": "Solved locally"})
    assert (fresh(consultation).state, fresh(consultation).cancel_reason) == (
        "cancelled", "Solved locally")  # fmt: skip


def test_advise_a_referral_creates_a_linked_draft_for_the_clinic_doctor(app, login, make_patient):
    app.config["CONSULTATION_SECOND_CHECK"] = False
    consultation = ask(app, make_patient())
    pharmacist = login(PHARMACIST)
    url = f"/consultations/{consultation.id}"
    pharmacist.post(f"{url}/claim")
    pharmacist.post(f"{url}/answer", data={"note": "Needs a cardiology review."})
    assert "Advise a referral" in pharmacist.get(url).get_data(as_text=True)
    pharmacist.post(f"{url}/advise-referral")
    pharmacist.post(f"{url}/advise-referral")  # twice: still one
    linked = fresh(consultation)
    referral = Referral.get_by_id(linked.referral_id)
    assert Referral.select().where(Referral.patient == consultation.patient_id).count() == 1
    assert referral.state == "draft" and referral.created_by_id == user("doctor@jinzhou.demo").id
    assert f"#{consultation.id}" in referral.reason and "cardiology" in referral.clinical_summary
    assert [c.id for c in referral.consultations] == [consultation.id]
    doctor_page = login("doctor@jinzhou.demo").get(url).get_data(as_text=True)
    assert f"/referrals/{referral.id}" in doctor_page


# ---- need to know -------------------------------------------------------------------------
def test_hub_pharmacists_see_a_patient_only_through_a_consultation_in_the_window(
    app, login, make_patient
):
    patient = make_patient(english_name="HO, Need To Know")
    pharmacist = login(PHARMACIST)
    assert pharmacist.get(f"/patients/{patient.id}").status_code == 404
    consultation = ask(app, patient)
    assert pharmacist.get(f"/patients/{patient.id}").status_code == 200
    assert login("coordinator@hub.demo").get(f"/patients/{patient.id}").status_code == 404
    with app.test_request_context():
        consultation.cancel(user(NURSE), "asked by mistake")
    assert pharmacist.get(f"/consultations/{consultation.id}").status_code == 200
    with past_access_window(app):
        later = login(PHARMACIST)
        assert later.get(f"/consultations/{consultation.id}").status_code == 404
        assert later.get(f"/patients/{patient.id}").status_code == 404
        assert login(NURSE).get(f"/consultations/{consultation.id}").status_code == 200


def test_another_clinic_gets_404_and_it_is_audited(app, login, make_patient):
    consultation = ask(app, make_patient())
    other = login("doctor@huangge.demo")
    for path in ("", "/sheet", "/fhir", "/request-info", "/answer"):
        assert other.get(f"/consultations/{consultation.id}{path}").status_code in (403, 404)
    assert (
        other.post(f"/consultations/{consultation.id}/cancel", data={"reason": "x"}).status_code
        == 404
    )
    denied = AuditEvent.select().where(
        AuditEvent.action == "access_denied", AuditEvent.object_type == "consultation"
    )
    assert denied.count() >= 4


def test_withdrawing_cross_border_consent_stops_the_open_questions(app, login, make_patient):
    patient = make_patient()
    with app.test_request_context():
        consent = Consent.create(patient=patient, scope="cross_border", recorded_by=user(NURSE))
    consultation = ask(app, patient)
    with app.test_request_context():
        from clinic.domains import consent_withdrawn

        Consent.update(withdrawn_at=utcnow()).where(Consent.id == consent.id).execute()
        stopped = consent_withdrawn(user(NURSE), Consent.get_by_id(consent.id))
    assert consultation.id in [c.id for c in stopped]
    assert fresh(consultation).state == "cancelled"


# ---- library, Today, patient page ---------------------------------------------------------
def test_the_library_finds_answers_by_any_name_without_patient_identifiers(
    app, login, make_patient
):
    app.config["CONSULTATION_SECOND_CHECK"] = False
    patient = make_patient(chinese_name="司徒美華", english_name="SZETO, Mei Wah")
    consultation = ask(app, patient, drug_text="撲熱息痛 Panadol", question_type="dosing",
                       details="Low dose for secondary prevention?")  # fmt: skip
    with app.test_request_context():
        consultation.claim(user(PHARMACIST))
        cited = [{"title": "Hong Kong Drug Formulary", "source": "HA", "link": ""}]
        consultation.answer(user(PHARMACIST), [], "75–100 mg once daily.", cited)
    for reader in (NURSE, "doctor@huangge.demo", PHARMACIST):
        page = login(reader).get("/consultations/library?drug=扑热息痛&type=dosing")
        text = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "75–100 mg once daily." in text and "Hong Kong Drug Formulary" in text, reader
        assert "司徒美華" not in text and "SZETO" not in text and "1960" not in text
    traditional = login(NURSE).get("/consultations/library?drug=撲熱").get_data(as_text=True)
    assert "75–100 mg" in traditional


def test_today_and_the_patient_page_show_the_clinics_questions(app, login, make_patient):
    patient = make_patient(english_name="CHOI, Today")
    consultation = ask(app, patient, drug_text="Omeprazole")
    nurse, pharmacist = login(NURSE), login(PHARMACIST)
    today = nurse.get("/today").get_data(as_text=True)
    assert 'hx-get="/consultations/today"' in today  # the clinic's section loads on its own
    section = nurse.get("/consultations/today", headers=HX).get_data(as_text=True)
    assert "Omeprazole" in section and f"/consultations/{consultation.id}" in section
    assert "Omeprazole" in pharmacist.get("/today").get_data(as_text=True)
    page = nurse.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert f"/consultations/patient/{patient.id}" in page
    section = nurse.get(f"/consultations/patient/{patient.id}", headers=HX).get_data(as_text=True)
    assert "Omeprazole" in section and "<html" not in section
    assert f"/consultations/{consultation.id}" in section


def test_the_navigation_counts_what_waits_on_us(app, login, make_patient):
    before = login(PHARMACIST).get("/consultations/").get_data(as_text=True)
    count = int(re.search(r'id="badge-consultations"[^>]*>(\d+)<', before).group(1))
    ask(app, make_patient())
    after = login(PHARMACIST).get("/consultations/").get_data(as_text=True)
    assert int(re.search(r'id="badge-consultations"[^>]*>(\d+)<', after).group(1)) == count + 1


# ---- FHIR ---------------------------------------------------------------------------------
@pytest.mark.parametrize("state", list(CONSULTATION_STATES))
def test_fhir_bundle_validates_for_every_state(app, login, make_patient, state):
    made = phrases(app)
    consultation = ask(app, make_patient())
    with app.test_request_context():
        p1, p2, nurse = user(PHARMACIST), user(PHARMACIST_TWO), user(NURSE)
        steps = {
            "claimed": ["claim"], "info_requested": ["claim", "info"],
            "checking": ["claim", "answer"], "answered": ["claim", "answer", "check"],
            "acknowledged": ["claim", "answer", "check", "ack"], "cancelled": ["cancel"],
        }.get(state, [])  # fmt: skip
        for step in steps:
            c = fresh(consultation)
            if step == "claim":
                c.claim(p1)
            elif step == "info":
                c.request_info(p1, "Weight?")
            elif step == "answer":
                line = {"drug_text": "Amlodipine", "dose": made["dose"][0].id,
                        "frequency": made["frequency"][1].id}  # fmt: skip
                c.answer(p1, [line], "See line 1.", [{"title": "BNF", "source": "BNF 86"}])
            elif step == "check":
                c.second_check(p2)
            elif step == "ack":
                c.acknowledge(nurse)
            elif step == "cancel":
                c.cancel(nurse, "Not needed")
    assert fresh(consultation).state == state
    response = login(NURSE).get(f"/consultations/{consultation.id}/fhir")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    data = response.get_json()
    Bundle(data, strict=True)
    kinds = [e["resource"]["resourceType"] for e in data["entry"]]
    assert "Patient" in kinds and "CommunicationRequest" in kinds
    if state in ("answered", "acknowledged"):
        resources = [e["resource"] for e in data["entry"]]
        (answer,) = [r for r in resources if r["resourceType"] == "Communication"]
        texts = " ".join(p["contentString"] for p in answer["payload"])
        assert "Take 1 tablet" in texts and "每次服一粒" in texts and "每次服一片" in texts
    else:
        assert "Communication" not in kinds


def test_the_drug_is_matched_as_you_type_and_a_match_prefills_the_registration(app, login):
    from clinic.models import Drug

    with app.test_request_context():
        drug = Drug.add(user(PHARMACIST), {
            "generic_name": "Paracetamol", "brand_names": "Panadol", "name_hant": "撲熱息痛",
            "name_hans": "扑热息痛", "hk_registered": True, "hk_reg_no": "HK-12345",
            "mainland_marketed": True, "gba_listed": True,
        })  # fmt: skip
    nurse = login(NURSE)
    form = nurse.get("/consultations/new").get_data(as_text=True)
    assert 'hx-get="/consultations/new/drugs"' in form
    matches = nurse.get("/consultations/new/drugs?drug_text=扑热", headers=HX)
    text = matches.get_data(as_text=True)
    assert f"pick={drug.id}" in text and "撲熱息痛" in text
    nothing = nurse.get("/consultations/new/drugs?drug_text=Zzyzx", headers=HX)
    assert "Not in the catalogue" in nothing.get_data(as_text=True)
    fields = nurse.get(f"/consultations/new/drugs?pick={drug.id}", headers=HX)
    filled = fields.get_data(as_text=True)
    assert 'value="Paracetamol"' in filled and f'value="{drug.id}"' in filled
    assert re.search(r'value="both"[^>]*checked|checked[^>]*value="both"', filled)
    assert re.search(r'id="gba_listed"[^>]*checked|checked[^>]*id="gba_listed"', filled)
    other_hub_drug = login("doctor@huangge.demo").get("/consultations/new/drugs?pick=999999")
    assert other_hub_drug.status_code == 404


def test_hub_access_to_consultations_ends_when_the_window_closes(app, login):
    from test_tenancy import assert_unreachable, crawled, record_pages

    with app.test_request_context():
        for c in Consultation.select().where(Consultation.state.in_(["claimed", "checking"])):
            c.release(c.claimed_by) if c.state == "claimed" else c.second_check(
                user(PHARMACIST_TWO)
            )
        for c in Consultation.select().where(Consultation.state == "info_requested"):
            c.give_info(c.asked_by, "Done")
            c.release(c.claimed_by)
        for c in Consultation.select():
            if c.state == "open":
                c.cancel(c.asked_by, "Closed for the test")
            elif c.state == "answered":
                c.acknowledge(c.asked_by)
    gets, posts = record_pages(crawled(login(PHARMACIST), "/consultations/?state=all"))
    catalogue = ("/consultations/drugs/", "/consultations/phrases/")  # no patient in them
    gets = {u for u in gets if not u.startswith(catalogue)}
    posts = {u for u in posts if not u.startswith(catalogue)}
    assert any(u.endswith("/fhir") for u in gets) and any("/patients/" in u for u in gets)
    with past_access_window(app):
        assert_unreachable(login(PHARMACIST), gets, posts)
