"""Service-day bookings: capacity held by the database, a waitlist that fills itself."""

import datetime as dt
import multiprocessing
import threading

import pytest
from peewee import IntegrityError

from clinic.db import db
from clinic.models import Booking, BookingEvent, Conflict, Refused, ServiceDay, Slot
from clinic.models.bookings import SlotFull
from clinic.models.service_days import repeat_dates

from conftest import TEST_CONFIG, user

TODAY = dt.date.today()


@pytest.fixture
def doctor(demo_data):
    return user("doctor@jinzhou.demo")


@pytest.fixture
def patients(make_patient):
    def make(n):
        return [make_patient(chinese_name=f"測試{i}", phone=f"+852912345{i:02d}") for i in range(n)]

    return make


def first_slot(day) -> Slot:
    return Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()


def states(slot) -> list[str]:
    return sorted(b.state for b in Booking.select().where(Booking.slot == slot.id))


def test_planning_makes_the_slots_and_repeats(doctor, make_service_day):
    day = make_service_day(capacity=4, state="draft", ends=dt.time(11))
    slots = list(Slot.select().where(Slot.day == day.id).order_by(Slot.starts))
    assert [(s.starts, s.ends, s.capacity) for s in slots] == [
        (dt.time(9), dt.time(9, 30), 4),
        (dt.time(9, 30), dt.time(10), 4),
        (dt.time(10), dt.time(10, 30), 4),
        (dt.time(10, 30), dt.time(11), 4),
    ]
    assert day.state == "draft" and [e.action for e in day.timeline()] == ["create"]
    assert repeat_dates(dt.date(2027, 1, 31), "monthly", 3) == [
        dt.date(2027, 1, 31), dt.date(2027, 2, 28), dt.date(2027, 3, 31),
    ]  # fmt: skip
    assert len(repeat_dates(dt.date(2027, 1, 4), "weekly", 40)) == 12


def test_a_home_day_is_one_slot_of_visits(make_service_day):
    day = make_service_day(capacity=6, mode="home", slot_minutes=None, ends=dt.time(12))
    (slot,) = Slot.select().where(Slot.day == day.id)
    assert (slot.starts, slot.ends, slot.capacity) == (dt.time(9), dt.time(12), 6)


def test_a_full_slot_refuses_unless_the_waitlist_is_asked_for(doctor, make_service_day, patients):
    slot = first_slot(make_service_day(capacity=1))
    first, second = patients(2)
    Booking.book(doctor, slot, first, today=TODAY)
    with pytest.raises(SlotFull):
        Booking.book(doctor, slot, second, today=TODAY)
    waiting = Booking.book(doctor, slot, second, today=TODAY, waitlist=True)
    assert waiting.state == "waitlisted"
    assert Slot.get_by_id(slot.id).booked == 1


def test_one_booking_per_patient_per_day(doctor, make_service_day, patients):
    day = make_service_day(capacity=5)
    (patient,) = patients(1)
    slots = list(Slot.select().where(Slot.day == day.id))
    booking = Booking.book(doctor, slots[0], patient, today=TODAY)
    with pytest.raises(Refused, match="already has a booking"):
        Booking.book(doctor, slots[1], patient, today=TODAY)
    booking.cancel(doctor)
    assert Booking.book(doctor, slots[1], patient, today=TODAY).state == "booked"


def test_drafts_and_cancelled_days_take_no_bookings(doctor, make_service_day, patients):
    day = make_service_day(state="draft")
    (patient,) = patients(1)
    with pytest.raises(Refused, match="not open for booking"):
        Booking.book(doctor, first_slot(day), patient, today=TODAY)
    day.publish(doctor)
    day.cancel(doctor, "Typhoon signal 8")
    with pytest.raises(Refused, match="not open for booking"):
        Booking.book(doctor, first_slot(day), patient, today=TODAY)


def test_the_database_refuses_more_than_capacity(make_service_day):
    slot = first_slot(make_service_day(capacity=2))
    with pytest.raises(IntegrityError), db.atomic():
        Slot.update(booked=3).where(Slot.id == slot.id).execute()
    assert Slot.get_by_id(slot.id).booked == 0


def test_cancelling_promotes_the_first_waitlisted_onto_the_list_to_call(
    doctor, make_service_day, patients
):
    day = make_service_day(capacity=1)
    slot = first_slot(day)
    booked, first_waiting, second_waiting = (
        Booking.book(doctor, slot, p, today=TODAY, waitlist=True) for p in patients(3)
    )
    promoted = booked.cancel(doctor)
    assert promoted.id == first_waiting.id
    assert Booking.get_by_id(first_waiting.id).state == "booked"
    assert Booking.get_by_id(second_waiting.id).state == "waitlisted"
    assert [b.id for b in Booking.to_call(day.clinic_id)] == [first_waiting.id]
    events = BookingEvent.select().where(BookingEvent.booking == first_waiting.id)
    assert [(e.action, e.to_state) for e in events] == [
        ("waitlist", "waitlisted"), ("promote", "booked"),
    ]  # fmt: skip
    assert Slot.get_by_id(slot.id).booked == 1
    # A waitlisted patient who gives up frees no place and promotes nobody.
    assert Booking.get_by_id(second_waiting.id).cancel(doctor) is None
    assert Booking.get_by_id(first_waiting.id).mark_called(doctor)
    assert not Booking.to_call(day.clinic_id).exists()


def test_a_patient_waiting_for_any_slot_takes_a_place_in_another(
    doctor, make_service_day, patients
):
    day = make_service_day(capacity=1)
    early, late = Slot.select().where(Slot.day == day.id).order_by(Slot.starts)
    one, two = patients(2)
    Booking.book(doctor, early, one, today=TODAY)
    waiting = Booking.book(doctor, early, two, today=TODAY, waitlist=True, any_slot=True)
    elsewhere = Booking.book(doctor, late, patients(1)[0], today=TODAY)
    assert elsewhere.cancel(doctor).id == waiting.id
    assert Booking.get_by_id(waiting.id).slot_id == late.id


def test_cancelling_the_day_lists_every_patient_to_call(doctor, make_service_day, patients):
    day = make_service_day(capacity=1)
    slot = first_slot(day)
    bookings = [Booking.book(doctor, slot, p, today=TODAY, waitlist=True) for p in patients(2)]
    with pytest.raises(Refused):
        day.cancel(doctor, "")
    day.cancel(doctor, "Typhoon signal 8")
    called = {b.id: b.call_reason for b in Booking.to_call(day.clinic_id)}
    assert called == {b.id: "day_cancelled" for b in bookings}
    assert ServiceDay.get_by_id(day.id).sequence == day.sequence == 2


def test_attendance_in_one_tap_and_undo(doctor, make_service_day, patients):
    slot = first_slot(make_service_day())
    booking = Booking.book(doctor, slot, patients(1)[0], today=TODAY)
    booking.attend(doctor)
    assert (booking.state, booking.marked_by) == ("attended", doctor)
    booking.undo(doctor)
    booking.no_show(doctor)
    stale = Booking.get_by_id(booking.id)
    stale.state = "booked"
    with pytest.raises(Conflict):
        stale.attend(doctor)
    assert [e.action for e in booking.timeline()] == ["book", "attend", "undo", "no_show"]
    assert [b.id for b in Booking.no_shows(booking.clinic_id)] == [booking.id]


def test_capacity_changes_never_go_below_what_is_booked(doctor, make_service_day, patients):
    slot = first_slot(make_service_day(capacity=3))
    for patient in patients(2):
        Booking.book(doctor, slot, patient, today=TODAY)
    assert not slot.set_capacity(doctor, 1)
    assert slot.set_capacity(doctor, 2)
    assert Slot.get_by_id(slot.id).capacity == 2


def test_reserved_places_wait_for_patients_back_from_the_hub(doctor, make_service_day, patients):
    from clinic.models import Referral

    day = make_service_day(capacity=2, reserved=1)
    slot = first_slot(day)
    general, other, returning = patients(3)
    assert Booking.book(doctor, slot, general, today=TODAY).state == "booked"
    with pytest.raises(SlotFull):
        Booking.book(doctor, slot, other, today=TODAY)
    source = Referral.select().where(Referral.from_org == day.clinic_id).first()
    Referral.update(patient=returning, state="completed", br_follow_up_due=day.date).where(
        Referral.id == source.id
    ).execute()
    booking = Booking.book(doctor, slot, returning, today=TODAY)
    assert (booking.state, booking.reserved_place) == ("booked", True)
    # Two days before, what is still reserved opens to everyone.
    release = day.date - dt.timedelta(days=day.release_days)
    assert not day.reserve_held(release)


def _race(app, jobs):
    """Run each job in its own thread (own connection) at the same moment; their outcomes."""
    barrier = threading.Barrier(len(jobs))
    outcomes = []

    def run(job):
        with app.app_context():
            try:
                barrier.wait()
                outcomes.append(job())
            except Exception as error:
                outcomes.append(repr(error))
            finally:
                db.close()

    workers = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return outcomes


def _book_in_process(url, slot_id, patient_id, doctor_id, barrier, outcomes):
    """One desk on its own server: a separate process with its own app and connection."""
    from clinic import create_app
    from clinic.models import Booking, Patient, Slot, User

    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    with app.app_context():
        slot, patient = Slot.get_by_id(slot_id), Patient.get_by_id(patient_id)
        doctor = User.get_by_id(doctor_id)
        barrier.wait()
        outcomes.append(Booking.book(doctor, slot, patient, today=TODAY, waitlist=True).state)


def test_twenty_desks_booking_one_slot_of_three_at_once(app, doctor, make_service_day, patients):
    slot = first_slot(make_service_day(capacity=3))
    people = patients(20)
    outcomes = _race(app, [
        lambda p=p: Booking.book(doctor, slot, p, today=TODAY, waitlist=True).state
        for p in people
    ])  # fmt: skip
    assert sorted(outcomes) == ["booked"] * 3 + ["waitlisted"] * 17, outcomes
    assert states(slot) == ["booked"] * 3 + ["waitlisted"] * 17
    assert Slot.get_by_id(slot.id).booked == 3


def test_twenty_servers_booking_at_once(app, doctor, make_service_day, patients):
    """20 separate processes (each its own app, as on several servers) on PostgreSQL; SQLite
    is one process by design (gunicorn.conf.py refuses more), so there it races threads."""
    slot = first_slot(make_service_day(capacity=3))
    people = patients(20)
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        outcomes = _race(app, [
            lambda p=p: Booking.book(doctor, slot, p, today=TODAY, waitlist=True).state
            for p in people
        ])  # fmt: skip
    else:
        db.close()
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier, shared = manager.Barrier(len(people)), manager.list()
            desks = [
                context.Process(
                    target=_book_in_process, args=(url, slot.id, p.id, doctor.id, barrier, shared)
                )
                for p in people
            ]
            for desk in desks:
                desk.start()
            for desk in desks:
                desk.join(timeout=180)
            outcomes = list(shared)
    assert sorted(outcomes) == ["booked"] * 3 + ["waitlisted"] * 17, outcomes
    assert Slot.get_by_id(slot.id).booked == 3


def test_cancellations_and_bookings_at_once_keep_capacity_and_promote_once(
    app, doctor, make_service_day, patients
):
    slot = first_slot(make_service_day(capacity=3))
    people = patients(40)
    for patient in people[:8]:  # 3 booked, 5 waiting
        Booking.book(doctor, slot, patient, today=TODAY, waitlist=True)
    for round_ in range(3):
        newcomers = people[8 + 8 * round_ : 16 + 8 * round_]
        holding = list(Booking.select().where(Booking.slot == slot.id, Booking.state == "booked"))
        cancels = [lambda b=b: bool(Booking.get_by_id(b.id).cancel(doctor)) for b in holding[:2]]
        books = [
            lambda p=p: Booking.book(doctor, slot, p, today=TODAY, waitlist=True).state
            for p in newcomers
        ]
        outcomes = _race(app, cancels + books)
        assert not [o for o in outcomes if isinstance(o, str) and "Error" in o], outcomes
        fresh = Slot.get_by_id(slot.id)
        taken = Booking.select().where(Booking.slot == slot.id, Booking.state == "booked")
        assert fresh.booked == taken.count() <= fresh.capacity
        assert fresh.booked == 3  # every freed place went to someone at once
    promotions = (
        BookingEvent.select()
        .join(Booking)
        .where(Booking.slot == slot.id, BookingEvent.action == "promote")
    )
    cancelled = Booking.select().where(Booking.slot == slot.id, Booking.state == "cancelled")
    promoted_ids = [e.booking_id for e in promotions]
    # Exactly one promotion per freed place, nobody promoted twice: a place is never free
    # between a cancellation and its promotion, so the new bookings all went to the waitlist.
    assert len(promoted_ids) == len(set(promoted_ids)) == cancelled.count() == 6
