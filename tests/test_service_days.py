"""Service days through the web: planning with bad input, booking, waitlist, attendance."""

import datetime as dt
import re

import pytest

from clinic.models import AuditEvent, Booking, Patient, Place, ServiceDay, Slot

from conftest import user

FUTURE = (dt.date.today() + dt.timedelta(days=10)).isoformat()


@pytest.fixture
def place(demo_data):
    clinic = user("doctor@jinzhou.demo").organisation_id
    return Place.select().where(Place.clinic == clinic).first()


def plan(place, **fields):
    return {
        "date": FUTURE, "starts": "09:00", "ends": "11:00", "mode": "centre",
        "slot_minutes": "30", "capacity": "3", "reserved": "0", "release_days": "2",
        "theme": "chronic", "place": str(place.id), "description_en": "BP check",
        "description_zh": "量血壓", "repeat": "", "times": "1",
    } | fields  # fmt: skip


def test_planning_a_day_makes_a_draft_with_its_slots(doctor, place):
    response = doctor.post("/service-days/new", data=plan(place, repeat="weekly", times="3"))
    assert response.status_code == 303
    days = list(ServiceDay.select().where(ServiceDay.description_en == "BP check"))
    assert len(days) == 3 and {d.state for d in days} == {"draft"}
    assert Slot.select().where(Slot.day == days[0].id).count() == 4
    page = doctor.get(response.headers["Location"]).get_data(as_text=True)
    assert "BP check" in page and "Publish" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ends": "08:00"}, "The end time must be after the start time."),
        ({"date": "2020-01-06"}, "The date is in the past."),
        ({"slot_minutes": "45"}, "Slots of 45 minutes do not fill 09:00 to 11:00: 30 minutes"),
        ({"capacity": "0"}, "Capacity is 1 to 50."),
        ({"capacity": "51"}, "Capacity is 1 to 50."),
    ],
)
def test_bad_plans_come_back_with_what_was_typed(doctor, place, fields, message):
    before = ServiceDay.select().count()
    response = doctor.post("/service-days/new", data=plan(place, **fields))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page
    assert "BP check</textarea>" in page and 'value="09:00"' in page
    assert ServiceDay.select().count() == before


def test_bad_plans_are_explained_in_chinese(doctor, place):
    doctor.post("/language", data={"lang": "zh_Hans_CN"})
    response = doctor.post("/service-days/new", data=plan(place, ends="08:00"))
    assert response.status_code == 422
    assert "结束时间必须晚于开始时间。" in response.get_data(as_text=True)


def _book(client, day, patient, **fields):
    slot = Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()
    return client.post(
        f"/service-days/{day.id}/book?patient={patient.id}", data={"slot": slot.id, **fields}
    )


def test_booking_from_the_patient_page_and_the_stale_slot(doctor, make_service_day, make_patient):
    day = make_service_day(capacity=1)
    first, second = make_patient(chinese_name="甲"), make_patient(chinese_name="乙")
    patient_page = doctor.get(f"/patients/{first.id}").get_data(as_text=True)
    # The patient page loads its service-day section as a fragment of its own.
    section = re.search(r'hx-get="(/service-days/patient/\d+)"', patient_page).group(1)
    section_html = doctor.get(section, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'action="/service-days/{day.id}/book"' in section_html
    form = doctor.get(f"/service-days/{day.id}/book?patient={first.id}")
    assert form.status_code == 200
    assert _book(doctor, day, first).status_code == 303
    again = _book(doctor, day, first)
    assert again.status_code == 422
    assert "already has a booking on this day" in again.get_data(as_text=True)
    stale = _book(doctor, day, second)  # the form said 1 free; it is full now
    page = stale.get_data(as_text=True)
    assert stale.status_code == 422
    assert "Someone filled this slot a moment ago" in page and "Put on the waitlist" in page
    assert _book(doctor, day, second, waitlist="y").status_code == 303
    assert Booking.get(Booking.patient == second).state == "waitlisted"


def test_booking_an_unpublished_day_is_refused(doctor, make_service_day, make_patient):
    day = make_service_day(state="draft")
    response = _book(doctor, day, make_patient())
    assert response.status_code == 422
    assert "not open for booking" in response.get_data(as_text=True)


def test_cancelling_a_booking_promotes_and_lists_the_patient_to_call(
    doctor, make_service_day, make_patient
):
    day = make_service_day(capacity=1)
    first, second = (
        make_patient(chinese_name="甲"),
        make_patient(chinese_name="乙", phone="+85298765432"),
    )
    _book(doctor, day, first)
    _book(doctor, day, second, waitlist="y")
    booking = Booking.get(Booking.patient == first)
    response = doctor.post(f"/service-days/bookings/{booking.id}/cancel", follow_redirects=True)
    assert "moved up from the waitlist: call them" in response.get_data(as_text=True)
    to_call = doctor.get("/service-days/to-call").get_data(as_text=True)
    assert "乙" in to_call and "9876 5432" in to_call
    promoted = Booking.get(Booking.patient == second)
    doctor.post(f"/service-days/bookings/{promoted.id}/called")
    assert "乙" not in doctor.get("/service-days/to-call").get_data(as_text=True)


def test_attendance_is_one_tap_and_undoable(doctor, make_service_day, make_patient):
    day = make_service_day()
    _book(doctor, day, make_patient())
    booking = Booking.get(Booking.day == day.id)
    htmx = {"HX-Request": "true"}
    tapped = doctor.post(f"/service-days/bookings/{booking.id}/attend", headers=htmx)
    fragment = tapped.get_data(as_text=True)
    assert tapped.status_code == 200 and "<html" not in fragment
    assert f'id="booking-{booking.id}"' in fragment and "Attended" in fragment
    assert "Undo" in fragment
    doctor.post(f"/service-days/bookings/{booking.id}/undo", headers=htmx)
    assert Booking.get_by_id(booking.id).state == "booked"
    assert [e.action for e in Booking.get_by_id(booking.id).timeline()] == [
        "book",
        "attend",
        "undo",
    ]


def test_walk_ins_and_the_home_visiting_order(doctor, make_service_day, make_patient):
    day = make_service_day(mode="home", slot_minutes=None, capacity=3)
    first, second, walker = (make_patient(chinese_name=n) for n in ("甲", "乙", "丙"))
    _book(doctor, day, first, address="1 Harbour Rd", access_notes="No lift")
    _book(doctor, day, second, address="2 Harbour Rd")
    later = Booking.get(Booking.patient == second)
    doctor.post(f"/service-days/bookings/{later.id}/order/up")
    order = [b.patient_id for b in Booking.of_day(day).order_by(Booking.position)]
    assert order == [second.id, first.id]
    doctor.post(f"/service-days/{day.id}/walk-in", data={"patient": walker.id})
    assert Booking.get(Booking.patient == walker).walk_in
    roster = doctor.get(f"/service-days/{day.id}/roster").get_data(as_text=True)
    assert "1 Harbour Rd" in roster and "No lift" in roster
    assert "Visiting order" in roster and "家訪次序" in roster


def test_the_day_moves_and_cancelling_lists_everyone(doctor, make_service_day, make_patient):
    day = make_service_day()
    _book(doctor, day, make_patient(chinese_name="甲"))
    doctor.post(f"/service-days/{day.id}/unpublish")
    assert ServiceDay.get_by_id(day.id).state == "draft"
    assert Booking.select().where(Booking.day == day.id).count() == 1
    doctor.post(f"/service-days/{day.id}/publish")
    refused = doctor.post(f"/service-days/{day.id}/cancel", data={"reason": ""})
    assert refused.status_code == 422
    doctor.post(f"/service-days/{day.id}/cancel", data={"reason": "Typhoon signal 8"})
    assert ServiceDay.get_by_id(day.id).state == "cancelled"
    assert "甲" in doctor.get("/service-days/to-call").get_data(as_text=True)


def test_slot_capacity_never_below_booked(doctor, make_service_day, make_patient):
    day = make_service_day(capacity=2)
    _book(doctor, day, make_patient(chinese_name="甲"))
    _book(doctor, day, make_patient(chinese_name="乙"))
    slot = Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()
    page = doctor.post(
        f"/service-days/slots/{slot.id}/capacity", data={"capacity": "1"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "2 places are taken" in page
    assert Slot.get_by_id(slot.id).capacity == 2


def test_the_month_moves_by_htmx_and_works_without(doctor, make_service_day):
    day = make_service_day()
    month = day.date.strftime("%Y-%m")
    page = doctor.get(f"/service-days/?month={month}").get_data(as_text=True)
    assert "<html" in page and f'href="/service-days/{day.id}"' in page
    fragment = doctor.get(f"/service-days/?month={month}", headers={"HX-Request": "true"})
    assert '<section id="month"' in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    week = doctor.get(f"/service-days/week?start={day.date.isoformat()}").get_data(as_text=True)
    assert f'href="/service-days/{day.id}"' in week


def test_other_clinics_and_hubs_see_nothing(
    doctor, other_clinic_doctor, specialist, coordinator, make_service_day, make_patient
):
    day = make_service_day()
    patient = make_patient(chinese_name="甲")
    _book(doctor, day, patient)
    booking = Booking.get(Booking.patient == patient)
    for url in (f"/service-days/{day.id}", f"/service-days/{day.id}/roster"):
        assert other_clinic_doctor.get(url).status_code == 404
        assert coordinator.get(url).status_code == 404  # not on the day's staff
    assert (
        other_clinic_doctor.post(f"/service-days/bookings/{booking.id}/cancel").status_code == 404
    )
    assert coordinator.get(f"/patients/{patient.id}").status_code == 404
    # Hub staff assigned to the day see it and its booked patients, nothing else.
    day.edit(user("doctor@jinzhou.demo"), staff=[user("coordinator@hub.demo")])
    assert coordinator.get(f"/service-days/{day.id}").status_code == 200
    assert coordinator.get(f"/patients/{patient.id}").status_code == 200
    denied = AuditEvent.select().where(AuditEvent.action == "access_denied").count()
    assert denied >= 5


def test_today_lists_todays_day_and_the_nav_counts_patients_to_call(nurse, demo_data):
    page = nurse.get("/today").get_data(as_text=True)
    assert '<h2><a href="/service-days/">Service days</a></h2>' in page
    clinic = user("nurse@jinzhou.demo").organisation_id
    assert Patient.select().where(Patient.clinic == clinic).exists()
    assert 'id="badge-service_days"' in page


def _statements(client, url) -> int:
    import logging

    class Counter(logging.Handler):
        count = 0

        def emit(self, record):
            Counter.count += 1

    logger = logging.getLogger("peewee")
    handler, level = Counter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        assert client.get(url).status_code == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return Counter.count


def test_the_day_page_costs_the_same_statements_however_many_bookings(
    doctor, make_service_day, make_patient
):
    day = make_service_day(capacity=10)
    slot = Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()
    nurse = user("nurse@jinzhou.demo")

    def add(n):
        for i in range(n):
            booking = Booking.book(nurse, slot, make_patient(), today=dt.date.today())
            if i % 2:
                booking.attend(nurse)

    add(2)
    few = _statements(doctor, f"/service-days/{day.id}")
    add(8)
    assert _statements(doctor, f"/service-days/{day.id}") == few


def test_hub_staff_lose_a_days_patients_by_the_local_calendar(app, make_service_day, make_patient):
    """Thirty days after a day's (local) date its patients leave the hub staff's view, also in
    the eight hours when Hong Kong has a later date than UTC."""
    import time_machine

    day_date = dt.date(2027, 3, 1)
    doctor, specialist = user("doctor@jinzhou.demo"), user("specialist@hub.demo")
    day = make_service_day(date=day_date, staff=[doctor, specialist])
    slot = Slot.select().where(Slot.day == day.id).first()
    booking = Booking.book(doctor, slot, make_patient(), today=day_date - dt.timedelta(days=1))
    day.complete(doctor)

    def visible_at(utc: dt.datetime) -> bool:
        clock = time_machine.travel(utc.replace(tzinfo=dt.UTC), tick=False)
        with clock, app.test_request_context():
            ids = Booking.patient_ids_visible_to(specialist)
            return booking.patient_id in {row.patient_id for row in ids}

    last_day = day_date + dt.timedelta(days=30)
    assert visible_at(dt.datetime.combine(last_day, dt.time(15, 30)))  # 23:30 in Hong Kong
    assert not visible_at(dt.datetime.combine(last_day, dt.time(16, 30)))  # 00:30 the next day
