"""Bookings of service days: a slot never holds more than its capacity, the waitlist fills itself.

A place is taken by one conditional update of the slot's booked count
(`UPDATE slot SET booked = booked + 1 WHERE id = ? AND booked < capacity`) inside the write
transaction that inserts the booking, and the table's CHECK (booked <= capacity) backs it: two
desks, two servers or twenty threads booking at once can never overfill a slot. A patient holds
one booking per day (a unique index over the bookings that are not cancelled). Cancelling a
booking frees its place and, in the same transaction, promotes the first patient waiting for it
onto the list of patients to call.
"""

import datetime as dt

from flask import current_app
from peewee import (
    JOIN,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    IntegrityError,
    TextField,
    fn,
)

from clinic.db import AtRun, alias, is_sqlite, utcnow, write_transaction
from clinic.models.core import AuditEvent, BaseModel, Organisation, TimelineEvent, User
from clinic.models.patients import Patient
from clinic.models.service_days import (
    CLINIC_STAFF,
    COMPLETED,
    DRAFT,
    PUBLISHED,
    ServiceDay,
    Slot,
)
from clinic.translation import lazy_gettext as _l
from clinic.workflow import Conflict, Move, Refused, Stateful, Workflow

__all__ = ["BOOKING_STATES", "Booking", "BookingEvent", "SlotFull"]

BOOKED, WAITLISTED, CANCELLED = "booked", "waitlisted", "cancelled"
ATTENDED, NO_SHOW = "attended", "no_show"
HOLDING = (BOOKED, ATTENDED, NO_SHOW)  # states that take a place in a slot
BOOKING_STATES = {
    BOOKED: _l("Booked"),
    WAITLISTED: _l("On the waitlist"),
    CANCELLED: _l("Cancelled"),
    ATTENDED: _l("Attended"),
    NO_SHOW: _l("No-show"),
}
PROMOTED, DAY_CANCELLED = "promoted", "day_cancelled"
CALL_REASONS = {
    PROMOTED: _l("A place opened: booked from the waitlist"),
    DAY_CANCELLED: _l("The service day is cancelled"),
}
BOOKING_FLOW = Workflow(
    BOOKING_STATES,
    (
        Move("attend", (BOOKED,), ATTENDED, "clinic", CLINIC_STAFF,
             _l("Attended"), _l("Marked as attended.")),
        Move("no_show", (BOOKED,), NO_SHOW, "clinic", CLINIC_STAFF,
             _l("No-show"), _l("Marked as no-show.")),
        Move("undo", (ATTENDED, NO_SHOW), BOOKED, "clinic", CLINIC_STAFF,
             _l("Undo"), _l("Attendance undone.")),
        Move("cancel", (BOOKED, WAITLISTED), CANCELLED, "clinic", CLINIC_STAFF,
             _l("Cancel booking"), _l("Booking cancelled."), danger=True),
    ),
    owners={},
    open_states=(BOOKED, WAITLISTED),
)  # fmt: skip
ATTENDANCE = ("attend", "no_show", "undo")
# A patient back from the hub around the day's date may take a reserved place.
RETURN_WINDOW = dt.timedelta(days=14)


FULL = _l(
    "Someone filled this slot a moment ago: it is full now. Put the patient on its waitlist, "
    "or choose another slot."
)


class SlotFull(Conflict):
    """The slot filled up since the form was shown; the waitlist is offered."""


class Booking(Stateful, BaseModel):
    clinic = ForeignKeyField(Organisation)
    day = ForeignKeyField(ServiceDay, backref="bookings", on_delete="CASCADE")
    slot = ForeignKeyField(Slot, null=True, backref="bookings")  # walk-ins have none
    patient = ForeignKeyField(Patient, backref="service_bookings")
    state = CharField(choices=list(BOOKING_STATES.items()), default=BOOKED)
    position = IntegerField(default=0)  # waitlist order; home visits: the visiting order
    any_slot = BooleanField(default=False)  # waitlisted for any slot of the day
    reserved_place = BooleanField(default=False)
    walk_in = BooleanField(default=False)
    address = TextField(null=True)  # home visits
    access_notes = TextField(null=True)
    carer_contact = CharField(null=True)
    call_reason = CharField(null=True)  # on the list to call, and why
    called_at = DateTimeField(null=True)
    called_by = ForeignKeyField(User, null=True)
    marked_by = ForeignKeyField(User, null=True)
    marked_at = DateTimeField(null=True)
    created_by = ForeignKeyField(User)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    workflow = BOOKING_FLOW
    audit_type = "service_booking"

    def refusal(self, user: User, move: Move):
        day_state = self.day.state  # joined by the listings, else loaded once
        if move.name in ATTENDANCE and day_state not in (PUBLISHED, COMPLETED):
            return _l("Attendance is recorded on a published day.")
        if move.name == "cancel" and day_state == COMPLETED:
            return _l("The service day is completed.")
        return super().refusal(user, move)

    def audit_subject(self) -> tuple[str, int, str]:
        """Filed under the patient, so their record shows every booking change."""
        return "patient", self.patient_id, f"service day {self.day_id}: booking → {self.state}"

    @property
    def call_reason_label(self) -> str:
        return str(CALL_REASONS.get(self.call_reason, ""))

    # ---- queries ----------------------------------------------------------------------------
    @classmethod
    def of_day(cls, day: ServiceDay):
        """The day's bookings with their patients, in slot then waitlist or visiting order."""
        marker = alias(User, "booking.marker")
        return (
            cls.select(cls, Patient, ServiceDay, marker, Slot)
            .join(Patient)
            .switch(cls)
            .join(ServiceDay)
            .switch(cls)
            .join(marker, JOIN.LEFT_OUTER, on=cls.marked_by)
            .switch(cls)
            .join(Slot, JOIN.LEFT_OUTER, on=cls.slot)
            .where(cls.day == day.id, cls.state != CANCELLED)
            .order_by(cls.slot, cls.position, cls.id)
        )

    @classmethod
    def to_call(cls, clinic_id: int):
        """Patients to telephone: promoted from a waitlist, or their day was cancelled."""
        return cls.select().where(
            cls.clinic == clinic_id, cls.call_reason.is_null(False), cls.called_at.is_null()
        )

    @classmethod
    def to_call_listing(cls, clinic_id: int):
        return (
            cls.to_call(clinic_id)
            .select_extend(Patient, ServiceDay)
            .join(Patient)
            .switch(cls)
            .join(ServiceDay)
            .order_by(ServiceDay.date, cls.updated_at)
        )

    @classmethod
    def no_shows(cls, clinic_id: int):
        return (
            cls.select(cls, Patient, ServiceDay)
            .join(Patient)
            .switch(cls)
            .join(ServiceDay)
            .where(cls.clinic == clinic_id, cls.state == NO_SHOW)
            .order_by(ServiceDay.date.desc())
        )

    @classmethod
    def patient_ids_visible_to(cls, user: User):
        """Hub staff assigned to a day see its booked patients while the day is open, and for
        HUB_ACCESS_DAYS_AFTER_CLOSE days after its date (need to know)."""
        if not user.organisation.is_hub:
            return None
        days = current_app.config.get("HUB_ACCESS_DAYS_AFTER_CLOSE", 30)
        # A day's date is a local date: 00:30 in Hong Kong is already the next day.
        since = AtRun(_days_ago, user.organisation, days)
        staffed = ServiceDay.staffed_by(user).where(
            ServiceDay.state != DRAFT, (ServiceDay.state == PUBLISHED) | (ServiceDay.date >= since)
        )
        return cls.select(cls.patient).where(
            cls.day.in_(staffed.select(ServiceDay.id)), cls.state != CANCELLED
        )

    @classmethod
    def with_counts(cls, days_query, states=(BOOKED, ATTENDED, WAITLISTED)):
        """The days with how many bookings each has in each of `states`, as columns
        `n_<state>` of the same statement (no second query for a list of days)."""
        columns = []
        for state in states:
            booking = cls.alias()
            count = booking.select(fn.COUNT(booking.id)).where(
                booking.day == ServiceDay.id, booking.state == state
            )
            columns.append(count.alias(f"n_{state}"))
        return days_query.select_extend(*columns)

    @classmethod
    def counts(cls, days) -> dict:
        """{day id: {state: n}} of the bookings of these days, in one query."""
        counts: dict = {}
        rows = (
            cls.select(cls.day, cls.state, fn.COUNT(cls.id))
            .where(cls.day.in_([d.id for d in days]))
            .group_by(cls.day, cls.state)
            .tuples()
        )
        for day_id, state, n in rows:
            counts.setdefault(day_id, {})[state] = n
        return counts

    @classmethod
    def held_by(cls, patient: Patient, day: ServiceDay):
        return cls.select().where(
            cls.day == day.id, cls.patient == patient.id, cls.state != CANCELLED
        )

    @classmethod
    def of_patient(cls, patient: Patient):
        return (
            cls.select(cls, ServiceDay)
            .join(ServiceDay)
            .where(cls.patient == patient.id, cls.state != CANCELLED)
            .order_by(ServiceDay.date.desc())
            .limit(10)
        )

    @staticmethod
    def returning_from_hub(patient: Patient, day: ServiceDay) -> bool:
        """Back from the hub around this day: a back-referral follow-up due near it, or a
        down-referral accepted into this clinic's register lately."""
        from clinic.models.referrals import ACCEPTED, CLOSED, COMPLETED, DOWN, Referral

        near = (day.date - RETURN_WINDOW, day.date + RETURN_WINDOW)
        back = Referral.select().where(
            Referral.patient == patient.id, Referral.from_org == day.clinic_id,
            Referral.state.in_((COMPLETED, CLOSED)), Referral.br_follow_up_due.between(*near),
        )  # fmt: skip
        down = Referral.select().where(
            Referral.clinic_patient == patient.id, Referral.direction == DOWN,
            Referral.state == ACCEPTED,
            Referral.updated_at >= dt.datetime.combine(near[0], dt.time()) - RETURN_WINDOW,
        )  # fmt: skip
        return back.exists() or down.exists()

    # ---- booking ----------------------------------------------------------------------------
    @classmethod
    def book(
        cls, user: User, slot: Slot, patient: Patient, *, today: dt.date, waitlist: bool = False,
        any_slot: bool = False, **home,
    ) -> "Booking":  # fmt: skip
        """Book the patient into the slot, or onto its waitlist when full and `waitlist`.

        SlotFull when the slot is full and the waitlist was not asked for; Refused when the
        day is not open for booking or the patient already has a booking that day.
        """
        day = ServiceDay.get_by_id(slot.day_id)
        cls._may_book(user, day, patient)
        returning = cls.returning_from_hub(patient, day)
        try:
            with write_transaction():
                cls._lock(slot.id)
                if ServiceDay.get_by_id(day.id).state != PUBLISHED:
                    raise Refused(_l("This service day is not open for booking."))
                if cls.held_by(patient, day).exists():  # the clearer message; the index decides
                    raise IntegrityError("one booking per patient per day")
                place = _take_place(slot.id, returning, day.reserve_held(today))
                if place is None and not waitlist:
                    raise SlotFull(FULL)
                booking = cls.create(
                    clinic=day.clinic_id, day=day, slot=slot.id, patient=patient.id,
                    state=BOOKED if place else WAITLISTED, position=cls._next_position(day),
                    any_slot=any_slot, reserved_place=place == "reserved", created_by=user,
                    **home,
                )  # fmt: skip
                booking._record(user, "book" if place else "waitlist", None, booking.state)
        except IntegrityError as error:
            raise Refused(_l("This patient already has a booking on this day.")) from error
        return booking

    @classmethod
    def add_walk_in(cls, user: User, day: ServiceDay, patient: Patient) -> "Booking":
        """A patient seen at the desk without a booking: attended, outside the slots."""
        cls._may_book(user, day, patient, states=(PUBLISHED, COMPLETED))
        try:
            with write_transaction():
                booking = cls.create(
                    clinic=day.clinic_id, day=day, patient=patient.id, state=ATTENDED,
                    walk_in=True, position=cls._next_position(day), created_by=user,
                    marked_by=user, marked_at=utcnow(),
                )  # fmt: skip
                booking._record(user, "walk_in", None, ATTENDED)
        except IntegrityError as error:
            raise Refused(_l("This patient already has a booking on this day.")) from error
        return booking

    @staticmethod
    def _may_book(user: User, day: ServiceDay, patient: Patient, states=(PUBLISHED,)) -> None:
        if not user.has_role(*CLINIC_STAFF) or user.organisation_id != day.clinic_id:
            raise Refused(_l("Only the clinic's doctors and nurses book its service days."))
        if patient.clinic_id != day.clinic_id:
            raise Refused(_l("The patient is not registered at this clinic."))
        if day.state not in states:
            raise Refused(_l("This service day is not open for booking."))

    @staticmethod
    def _lock(slot_id: int) -> None:
        """PostgreSQL: bookings of one slot queue on its row (SQLite: BEGIN IMMEDIATE does)."""
        if not is_sqlite():
            Slot.select(Slot.id).where(Slot.id == slot_id).for_update().execute()

    @classmethod
    def _next_position(cls, day: ServiceDay) -> int:
        last = cls.select(fn.MAX(cls.position)).where(cls.day == day.id).scalar()
        return (last or 0) + 1

    def _record(self, user: User, action: str, from_state, to_state, note=None) -> None:
        BookingEvent.create(
            booking=self.id, user=user, organisation=user.organisation_id, action=action,
            from_state=from_state, to_state=to_state, note=note,
        )  # fmt: skip
        AuditEvent.write(user, action, *self.audit_subject())

    # ---- the moves (BOOKING_FLOW) -----------------------------------------------------------
    def attend(self, user: User) -> None:
        self.transition(user, "attend", marked_by=user, marked_at=utcnow())

    def no_show(self, user: User) -> None:
        self.transition(user, "no_show", marked_by=user, marked_at=utcnow())

    def undo(self, user: User) -> None:
        self.transition(user, "undo", marked_by=user, marked_at=utcnow())

    def cancel(self, user: User) -> "Booking | None":
        """Cancel; a freed place goes to the first patient waiting for it, in the same
        transaction. Returns the promoted booking, if any."""
        self.check(user, "cancel")
        held = self.state in HOLDING and self.slot_id
        with write_transaction():
            if held:
                self._lock(self.slot_id)
            self.transition(user, "cancel")
            if not held:
                return None
            _release_place(self.slot_id, self.reserved_place)
            return self._promote_into(user, self.slot_id)

    def _promote_into(self, user: User, slot_id: int) -> "Booking | None":
        """The first waitlisted patient of this slot (or of any slot of the day) is booked."""
        waiting = (
            Booking.select()
            .where(
                Booking.day == self.day_id,
                Booking.state == WAITLISTED,
                (Booking.slot == slot_id) | Booking.any_slot,
            )
            .order_by(Booking.position, Booking.id)
        )
        for candidate in waiting:
            if _take_place(slot_id, returning=False, held=False) is None:
                return None  # a desk booked the place in the meantime
            promoted = (
                Booking.update(
                    state=BOOKED, slot=slot_id, call_reason=PROMOTED, called_at=None,
                    updated_at=utcnow(),
                )
                .where(Booking.id == candidate.id, Booking.state == WAITLISTED)
                .execute()
            )  # fmt: skip
            if promoted:
                candidate._record(user, "promote", WAITLISTED, BOOKED)
                return candidate
            _release_place(slot_id, False)  # promoted elsewhere meanwhile: try the next one
        return None

    def mark_called(self, user: User) -> bool:
        changed = (
            Booking.update(called_at=utcnow(), called_by=user, updated_at=utcnow())
            .where(Booking.id == self.id, Booking.called_at.is_null())
            .execute()
        )
        if changed:
            AuditEvent.write(user, "called", *self.audit_subject())
        return bool(changed)

    def shift(self, user: User, step: int) -> None:
        """Home visits: move one place up (-1) or down (+1) in the visiting order."""
        neighbours = Booking.select().where(
            Booking.day == self.day_id, Booking.state != CANCELLED, Booking.id != self.id
        )
        if step < 0:
            other = neighbours.where(Booking.position <= self.position).order_by(
                Booking.position.desc(), Booking.id.desc()
            )
        else:
            other = neighbours.where(Booking.position >= self.position).order_by(
                Booking.position, Booking.id
            )
        other = other.first()
        if other is None:
            return
        with write_transaction():
            mine, theirs = other.position, self.position
            if mine == theirs:
                mine = theirs + step
            Booking.update(position=mine).where(Booking.id == self.id).execute()
            Booking.update(position=theirs).where(Booking.id == other.id).execute()
            AuditEvent.write(user, "visit_order", "service_day", self.day_id)

    @classmethod
    def to_call_for_cancelled_day(cls, day: ServiceDay) -> None:
        cls.update(call_reason=DAY_CANCELLED, called_at=None, updated_at=utcnow()).where(
            cls.day == day.id, cls.state.in_((BOOKED, WAITLISTED))
        ).execute()


def _days_ago(organisation, days: int) -> dt.date:
    """The date `days` before today on the organisation's calendar."""
    return organisation.today() - dt.timedelta(days=days)


def _take_place(slot_id: int, returning: bool, held: bool) -> str | None:
    """Take a place in the slot by one conditional update: "reserved", "general" or None."""
    if returning:
        taken = (
            Slot.update(booked=Slot.booked + 1, reserved_booked=Slot.reserved_booked + 1)
            .where(
                Slot.id == slot_id,
                Slot.reserved_booked < Slot.reserved,
                Slot.booked < Slot.capacity,
            )
            .execute()
        )
        if taken:
            return "reserved"
    conditions = [Slot.id == slot_id, Slot.booked < Slot.capacity]
    if held:  # the reserved places are not open to everyone yet
        conditions.append(Slot.booked - Slot.reserved_booked < Slot.capacity - Slot.reserved)
    taken = Slot.update(booked=Slot.booked + 1).where(*conditions).execute()
    return "general" if taken else None


def _release_place(slot_id: int, reserved: bool) -> None:
    values = {"booked": Slot.booked - 1}
    if reserved:
        values["reserved_booked"] = Slot.reserved_booked - 1
    Slot.update(**values).where(Slot.id == slot_id).execute()


class BookingEvent(TimelineEvent):
    """Append-only timeline of a booking: booked, waitlisted, promoted, attendance, cancelled."""

    booking = ForeignKeyField(Booking, backref="events", index=True)

    record_field = "booking"
    states = BOOKING_STATES

    @classmethod
    def of_day(cls, day: ServiceDay, limit: int = 30):
        actor = alias(User, "booking_event.actor")
        return (
            cls.select(cls, Booking, Patient, actor)
            .join(Booking)
            .join(Patient)
            .switch(cls)
            .join(actor, JOIN.LEFT_OUTER, on=cls.user)
            .where(Booking.day == day.id)
            .order_by(cls.at.desc(), cls.id.desc())
            .limit(limit)
        )


Booking.timeline_model = BookingEvent
Booking.add_index(
    Booking.index(Booking.day, Booking.patient, unique=True, where=(Booking.state != CANCELLED))
)

BOOKING_MODELS = [Booking, BookingEvent]
