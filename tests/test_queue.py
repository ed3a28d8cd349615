"""The same-day check-in queue: check-in, moves with times, compare-and-set, cheap polling."""

import datetime as dt
import gzip
from zoneinfo import ZoneInfo

import pytest

from clinic import demo
from clinic.models import AuditEvent, Visit, VisitEvent

from conftest import log_in, user

HTMX = {"HX-Request": "true"}
POLL = {"HX-Request": "true", "X-Clinic-Poll": "1"}


@pytest.fixture
def patient(make_patient):
    return make_patient(chinese_name="鍾大衛", english_name="CHUNG, Tai Wai")


def hong_kong_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date()


def check_in(client, patient):
    response = client.post(f"/patients/{patient.id}/check-in")
    assert response.status_code == 303
    return Visit.get(Visit.patient == patient, Visit.day == hong_kong_today())


SLUGS = {"with_doctor": "call-in", "done": "finish", "referred": "refer", "left": "leave"}


def move(client, visit, state, version=None, headers=None):
    data = {"version": visit.version if version is None else version}
    url = f"/patients/visits/{visit.id}/{SLUGS.get(state, state)}"
    return client.post(url, data=data, headers=headers or {})


def test_check_in_puts_the_patient_in_todays_queue_once(nurse, patient):
    visit = check_in(nurse, patient)
    assert (visit.state, visit.day, visit.checked_in_by.email) == (
        "waiting",
        hong_kong_today(),
        "nurse@jinzhou.demo",
    )
    queue = nurse.get("/patients/queue").get_data(as_text=True)
    assert "鍾大衛 CHUNG, Tai Wai is checked in." in queue
    assert queue.count("鍾大衛 CHUNG, Tai Wai") >= 2  # the message and the row
    nurse.post(f"/patients/{patient.id}/check-in")
    assert Visit.select().where(Visit.patient == patient).count() == 1
    assert "already in today" in nurse.get("/patients/queue").get_data(as_text=True)
    assert AuditEvent.select().where(AuditEvent.action == "patient_checked_in").count() == 1


def test_the_queue_is_on_today_for_clinic_staff(nurse, doctor, coordinator, patient):
    check_in(nurse, patient)
    assert "鍾大衛" in doctor.get("/today").get_data(as_text=True)
    assert 'id="queue"' not in coordinator.get("/today").get_data(as_text=True)
    assert coordinator.get("/patients/queue").status_code == 403


def test_waiting_with_doctor_done_with_times(nurse, doctor, patient):
    visit = check_in(nurse, patient)
    response = move(doctor, visit, "with_doctor", headers=HTMX)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith('<section id="queue"')
    called = Visit.get_by_id(visit.id)
    assert (called.state, called.version) == ("with_doctor", 2)
    assert called.called_at is not None and called.finished_at is None
    assert move(doctor, called, "done").status_code == 303
    done = Visit.get_by_id(visit.id)
    assert done.state == "done" and done.finished_at >= done.called_at
    assert done.updated_by.email == "doctor@jinzhou.demo"
    # A finished visit offers only the move back; a new check-in the same day is a new visit.
    assert [m.name for m in done.moves_for(user("doctor@jinzhou.demo"))] == ["undo_finish"]
    nurse.post(f"/patients/{patient.id}/check-in")
    assert Visit.select().where(Visit.patient == patient).count() == 2


@pytest.mark.parametrize("end", ["referred", "left"])
def test_other_endings(nurse, patient, end):
    visit = check_in(nurse, patient)
    if end == "referred":
        move(nurse, visit, "with_doctor")
        visit = Visit.get_by_id(visit.id)
    move(nurse, visit, end)
    assert Visit.get_by_id(visit.id).state == end


def test_a_move_that_is_not_allowed_from_this_state_is_refused(nurse, patient):
    visit = check_in(nurse, patient)
    assert move(nurse, visit, "done").status_code == 400
    assert move(nurse, visit, "nonsense").status_code == 400
    assert Visit.get_by_id(visit.id).state == "waiting"


def test_two_nurses_moving_the_same_visit_the_loser_sees_the_current_state(app, demo_data, patient):
    first = log_in(app.test_client(), "nurse@jinzhou.demo")
    second = log_in(app.test_client(), "doctor@jinzhou.demo")
    visit = check_in(first, patient)
    seen = visit.version  # both screens show version 1, "waiting"
    assert move(first, visit, "with_doctor", version=seen, headers=HTMX).status_code == 200
    lost = move(second, visit, "left", version=seen, headers=HTMX)
    assert lost.status_code == 200
    assert "it is now \\u201cWith doctor\\u201d" in lost.headers["HX-Trigger"]
    assert "With doctor" in lost.get_data(as_text=True)
    current = Visit.get_by_id(visit.id)
    assert (current.state, current.version) == ("with_doctor", 2)
    # Without JavaScript: redirected to the queue, with the message on the page.
    plain = move(second, visit, "left", version=seen)
    assert "Someone else changed this visit first" in second.get(
        plain.headers["Location"]
    ).get_data(as_text=True)


def test_polling_answers_204_without_a_body_until_something_changes(nurse, doctor, patient):
    page = nurse.get("/patients/queue").get_data(as_text=True)
    version = Visit.queue_version(nurse_clinic_id(), hong_kong_today())
    assert f"/patients/queue?v={version}" in page
    assert 'hx-trigger="every 10s"' in page and "X-Clinic-Poll" in page
    idle = nurse.get(f"/patients/queue?v={version}", headers=POLL)
    assert (idle.status_code, idle.data) == (204, b"")
    visit = check_in(doctor, patient)
    changed = nurse.get(f"/patients/queue?v={version}", headers=POLL)
    assert changed.status_code == 200 and "鍾大衛" in changed.get_data(as_text=True)
    newer = Visit.queue_version(nurse_clinic_id(), hong_kong_today())
    assert nurse.get(f"/patients/queue?v={newer}", headers=POLL).status_code == 204
    move(doctor, visit, "with_doctor")
    assert nurse.get(f"/patients/queue?v={newer}", headers=POLL).status_code == 200
    assert len(gzip.compress(changed.data)) <= 8_000


def nurse_clinic_id() -> int:
    from clinic.models import Organisation

    return Organisation.by_name(demo.CLINIC_A).id


def test_another_clinic_cannot_see_or_move_our_visits(nurse, other_clinic_doctor, patient):
    visit = check_in(nurse, patient)
    assert move(other_clinic_doctor, visit, "left").status_code == 404
    assert "鍾大衛" not in other_clinic_doctor.get("/patients/queue").get_data(as_text=True)
    assert Visit.get_by_id(visit.id).state == "waiting"
    denied = AuditEvent.get(AuditEvent.action == "access_denied")
    assert (denied.object_type, denied.object_id) == ("visit", str(visit.id))


def test_the_day_is_the_clinics_day_not_utc(nurse, make_patient):
    from clinic.models import Organisation

    days = []
    # 25 hours apart: these two zones never share a date, whatever the time of the test run.
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        Organisation.update(timezone=zone).where(Organisation.name == demo.CLINIC_A).execute()
        patient = make_patient(chinese_name=zone)
        nurse.post(f"/patients/{patient.id}/check-in")
        visit = Visit.get(Visit.patient == patient)
        assert visit.day == dt.datetime.now(ZoneInfo(zone)).date()
        days.append(visit.day)
        assert zone in nurse.get("/patients/queue").get_data(as_text=True)
    assert days[0] != days[1]


def test_every_queue_move_can_be_undone_and_the_undo_is_recorded(nurse, patient):
    visit = check_in(nurse, patient)
    move(nurse, visit, "with_doctor")
    move(nurse, Visit.get_by_id(visit.id), "back-to-waiting")  # called in by mistake
    back = Visit.get_by_id(visit.id)
    assert (back.state, back.called_at) == ("waiting", None)
    move(nurse, back, "left")  # "Mark as left" beside "Call in": undone, back in the queue
    assert move(nurse, Visit.get_by_id(visit.id), "back-to-waiting").status_code == 303
    back = Visit.get_by_id(visit.id)
    assert (back.state, back.finished_at) == ("waiting", None)
    move(nurse, back, "with_doctor")
    for ending in ("done", "referred"):
        move(nurse, Visit.get_by_id(visit.id), ending)
        assert move(nurse, Visit.get_by_id(visit.id), "undo-finish").status_code == 303
        undone = Visit.get_by_id(visit.id)
        assert (undone.state, undone.finished_at) == ("with_doctor", None)
        assert undone.called_at is not None
    undos = [e.to_state for e in VisitEvent.select().where(
        VisitEvent.visit == visit.id, VisitEvent.action.in_(["back_to_waiting", "undo_finish"])
    ).order_by(VisitEvent.id)]  # fmt: skip
    assert undos == ["waiting", "waiting", "with_doctor", "with_doctor"]  # on the timeline
    audited = AuditEvent.select().where(AuditEvent.action.in_(["back_to_waiting", "undo_finish"]))
    assert audited.count() == 4


def test_undoing_left_returns_to_where_the_visit_was(nurse, doctor, patient):
    visit = check_in(nurse, patient)
    move(doctor, visit, "with_doctor")
    called = Visit.get_by_id(visit.id)
    move(nurse, called, "left")  # pressed instead of "Finish" while the patient was inside
    gone = Visit.get_by_id(visit.id)
    assert [m.name for m in gone.moves_for(user("nurse@jinzhou.demo"))] == ["undo_finish"]
    assert move(nurse, gone, "back-to-waiting").status_code == 400  # not where it was
    assert Visit.get_by_id(visit.id).state == "left"
    queue = nurse.get("/patients/queue").get_data(as_text=True)
    assert f"/patients/visits/{visit.id}/undo-finish" in queue
    assert f"/patients/visits/{visit.id}/back-to-waiting" not in queue
    assert move(nurse, Visit.get_by_id(visit.id), "undo-finish").status_code == 303
    back = Visit.get_by_id(visit.id)
    assert (back.state, back.finished_at, back.called_at) == ("with_doctor", None, called.called_at)
    last = back.timeline().order_by(VisitEvent.id.desc()).first()
    assert (last.action, last.from_state, last.to_state) == ("undo_finish", "left", "with_doctor")
    # Left from the waiting room: the undo is back to waiting, as before.
    move(nurse, back, "back-to-waiting")
    move(nurse, Visit.get_by_id(visit.id), "left")
    gone = Visit.get_by_id(visit.id)
    assert [m.name for m in gone.moves_for(user("nurse@jinzhou.demo"))] == ["back_to_waiting"]


def test_an_undo_never_opens_a_second_visit_for_the_patient(nurse, patient):
    visit = check_in(nurse, patient)
    move(nurse, visit, "left")
    check_in(nurse, patient)  # they came back and were checked in again
    move(nurse, Visit.get_by_id(visit.id), "back-to-waiting")
    assert Visit.get_by_id(visit.id).state == "left"
    assert Visit.select().where(Visit.patient == patient, Visit.state == "waiting").count() == 1


def test_mark_as_left_stands_apart_from_call_in(nurse, patient):
    check_in(nurse, patient)
    page = nurse.get("/patients/queue").get_data(as_text=True)
    assert '<button class="small primary">Call in</button>' in page
    assert '<button class="small danger">Mark as left</button>' in page
