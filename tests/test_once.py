"""Exactly-once writes: a create form's one-time key makes a repeated submission (a double
click, a retry on a slow link) return the first result and create nothing twice."""

import re
import threading

import pytest

from clinic.models import Patient, Referral, SubmissionKey, Visit
from clinic.patients.forms import PatientForm

from conftest import log_in, user
from test_patients import FORM
from test_referrals import referral_form, submitted

KEY = re.compile(
    r'name="submission_key"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="submission_key"'
)


def key_on(page) -> str:
    found = KEY.search(page.get_data(as_text=True))
    assert found, "the form carries a one-time key"
    return found.group(1) or found.group(2)


def twice_at_once(app, email, url, data):
    """Two logged-in clients send the same POST at the same moment; their responses."""
    clients = [log_in(app.test_client(), email) for _ in range(2)]
    barrier = threading.Barrier(2)
    responses = []

    def send(client):
        barrier.wait()
        responses.append(client.post(url, data=data))

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def test_registering_twice_with_one_key_makes_one_patient(nurse):
    data = FORM | {"submission_key": key_on(nurse.get("/patients/new"))}
    first, again = nurse.post("/patients/new", data=data), nurse.post("/patients/new", data=data)
    assert (first.status_code, again.status_code) == (303, 303)
    assert first.headers["Location"] == again.headers["Location"]
    assert Patient.select().where(Patient.english_name == "CHAN, Mei Ling").count() == 1


def test_a_new_form_is_a_new_key(nurse):
    assert key_on(nurse.get("/patients/new")) != key_on(nurse.get("/patients/new"))


def test_two_identical_registrations_at_once_make_one_patient(app, demo_data):
    data = FORM | {"submission_key": "same-key-sent-twice-by-a-slow-link"}
    responses = twice_at_once(app, "nurse@jinzhou.demo", "/patients/new", data)
    assert [r.status_code for r in responses] == [303, 303]
    assert len({r.headers["Location"] for r in responses}) == 1
    assert Patient.select().where(Patient.english_name == "CHAN, Mei Ling").count() == 1


def test_a_twin_that_commits_while_this_one_is_checked_answers_with_its_result(
    app, demo_data, monkeypatch
):
    """The second of two identical registrations is still being validated when the first
    commits: it sees the documents registered, and answers with the first's result, not 422."""
    data = FORM | {"submission_key": "twin-committed-during-the-checks"}
    checking, first_done, answers = threading.Event(), threading.Event(), {}
    validate = PatientForm.validate_on_submit

    def checked_after_the_first(form, *args, **kwargs):
        if threading.current_thread().name == "second":
            checking.set()
            first_done.wait(30)
        return validate(form, *args, **kwargs)

    monkeypatch.setattr(PatientForm, "validate_on_submit", checked_after_the_first)
    first, second = (log_in(app.test_client(), "nurse@jinzhou.demo") for _ in range(2))
    thread = threading.Thread(
        target=lambda: answers.update(second=second.post("/patients/new", data=data)),
        name="second",
    )
    thread.start()
    assert checking.wait(30)
    answers["first"] = first.post("/patients/new", data=data)
    first_done.set()
    thread.join(60)
    assert [answers[n].status_code for n in ("first", "second")] == [303, 303]
    assert answers["first"].headers["Location"] == answers["second"].headers["Location"]
    assert Patient.select().where(Patient.english_name == "CHAN, Mei Ling").count() == 1


@pytest.fixture
def patient(make_patient):
    return make_patient(chinese_name="黃小明", english_name="WONG, Siu Ming")


def test_a_referral_sent_twice_is_one_referral(doctor, patient):
    url = f"/referrals/new?patient={patient.id}"
    data = referral_form(submission_key=key_on(doctor.get(url)))
    first, again = doctor.post(url, data=data), doctor.post(url, data=data)
    assert (first.status_code, again.status_code) == (303, 303)
    assert first.headers["Location"] == again.headers["Location"]
    assert Referral.select().where(Referral.patient == patient).count() == 1


def test_two_identical_referrals_at_once_make_one(app, demo_data, patient):
    url = f"/referrals/new?patient={patient.id}"
    data = referral_form(submission_key="one-key-two-requests")
    responses = twice_at_once(app, "doctor@jinzhou.demo", url, data)
    assert [r.status_code for r in responses] == [303, 303]
    assert Referral.select().where(Referral.patient == patient).count() == 1
    assert SubmissionKey.get(SubmissionKey.key == "one-key-two-requests").result_url


def test_a_down_referral_sent_twice_is_one(specialist, coordinator, patient):
    from clinic.db import utcnow

    source = submitted(patient)
    source.accept(user("coordinator@hub.demo"), utcnow(), "Cardiology clinic")
    url = f"/referrals/{source.id}/down"
    data = {
        "clinic": source.from_org_id,
        "priority": "routine",
        "reason": "Community follow-up of blood pressure",
        "submission_key": key_on(specialist.get(url)),
    }
    first, again = specialist.post(url, data=data), specialist.post(url, data=data)
    assert (first.status_code, again.status_code) == (303, 303)
    assert Referral.select().where(Referral.parent == source).count() == 1


def test_a_check_in_pressed_twice_at_once_is_one_visit(app, demo_data, patient):
    data = {"submission_key": "check-in-double-click"}
    url = f"/patients/{patient.id}/check-in"
    responses = twice_at_once(app, "nurse@jinzhou.demo", url, data)
    assert [r.status_code for r in responses] == [303, 303]
    assert Visit.select().where(Visit.patient == patient).count() == 1


def test_the_check_in_button_carries_a_key(nurse, patient):
    key_on(nurse.get(f"/patients/{patient.id}"))


def test_a_booking_sent_twice_is_one_booking(doctor, make_service_day, patient):
    from clinic.models import Booking, Slot

    day = make_service_day(capacity=3)
    url = f"/service-days/{day.id}/book?patient={patient.id}"
    slot = Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()
    data = {"slot": slot.id, "submission_key": key_on(doctor.get(url))}
    first, again = doctor.post(url, data=data), doctor.post(url, data=data)
    assert (first.status_code, again.status_code) == (303, 303)
    assert first.headers["Location"] == again.headers["Location"]
    assert Booking.select().where(Booking.patient == patient).count() == 1


def test_two_identical_bookings_at_once_make_one(app, make_service_day, patient):
    from clinic.models import Booking, Slot

    day = make_service_day(capacity=3)
    slot = Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()
    url = f"/service-days/{day.id}/book?patient={patient.id}"
    data = {"slot": slot.id, "submission_key": "booking-double-click"}
    responses = twice_at_once(app, "doctor@jinzhou.demo", url, data)
    assert [r.status_code for r in responses] == [303, 303]
    assert Booking.select().where(Booking.patient == patient).count() == 1
