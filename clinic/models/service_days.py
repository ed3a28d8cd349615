"""Family-doctor service days: places, days with their slots and staff, and calendar feeds.

A day is moved by a workflow (draft → published → completed; published → draft; draft or
published → cancelled), one compare-and-set and one timeline event per move. Its bookings are
in `clinic.models.bookings`: the capacity of a slot is enforced by the database.
"""

import calendar
import datetime as dt
import hashlib
import secrets
import uuid

from peewee import (
    CharField,
    Check,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    TimeField,
)

from clinic.db import utcnow, write_transaction
from clinic.models.core import (
    DOCTOR,
    NURSE,
    AuditEvent,
    BaseModel,
    Organisation,
    TimelineEvent,
    User,
)
from clinic.translation import lazy_gettext as _l
from clinic.workflow import Move, Refused, Stateful, Workflow

__all__ = [
    "DAY_STATES", "MODES", "THEMES", "CalendarFeed", "DayStaff", "Place", "ServiceDay",
    "ServiceDayEvent", "Slot",
]  # fmt: skip

CLINIC_STAFF = (DOCTOR, NURSE)
CENTRE, HOME = "centre", "home"
MODES = {CENTRE: _l("At the centre (time slots)"), HOME: _l("Home visits")}
THEMES = {
    "chronic": _l("Chronic-disease review"),
    "elderly": _l("Elderly assessment"),
    "vaccination": _l("Vaccination"),
    "talk": _l("Health talk"),
    "other": _l("Other"),
}
MAX_CAPACITY = 50
MAX_REPEAT = 12

DRAFT, PUBLISHED, COMPLETED, CANCELLED = "draft", "published", "completed", "cancelled"
DAY_STATES = {
    DRAFT: _l("Draft"),
    PUBLISHED: _l("Published"),
    COMPLETED: _l("Completed"),
    CANCELLED: _l("Cancelled"),
}
DAY_FLOW = Workflow(
    DAY_STATES,
    (
        Move("publish", (DRAFT,), PUBLISHED, "clinic", CLINIC_STAFF,
             _l("Publish"), _l("Service day published.")),
        Move("unpublish", (PUBLISHED,), DRAFT, "clinic", CLINIC_STAFF,
             _l("Unpublish"), _l("Service day hidden from booking; its bookings are kept.")),
        Move("complete", (PUBLISHED,), COMPLETED, "clinic", CLINIC_STAFF,
             _l("Mark as completed"), _l("Service day completed.")),
        Move("cancel", (DRAFT, PUBLISHED), CANCELLED, "clinic", CLINIC_STAFF,
             _l("Cancel service day"), _l("Service day cancelled: its patients are on the list "
                                          "to call."), form=True, danger=True),
    ),
    owners={},
    open_states=(DRAFT, PUBLISHED),
)  # fmt: skip


class Place(BaseModel):
    """A community health centre where a clinic holds service days."""

    clinic = ForeignKeyField(Organisation, backref="places")
    name = CharField()
    address = TextField()

    class Meta:
        indexes = ((("clinic", "name"), True),)

    @classmethod
    def of(cls, clinic_id: int):
        return cls.select().where(cls.clinic == clinic_id).order_by(cls.name)


class ServiceDay(Stateful, BaseModel):
    clinic = ForeignKeyField(Organisation, backref="service_days")
    place = ForeignKeyField(Place)
    date = DateField()  # the local date, in the clinic's time zone
    starts = TimeField()  # local times
    ends = TimeField()
    theme = CharField(choices=list(THEMES.items()))
    description_en = TextField(null=True)
    description_zh = TextField(null=True)
    mode = CharField(choices=list(MODES.items()), default=CENTRE)
    slot_minutes = IntegerField(null=True)
    reserved = IntegerField(default=0)  # places per slot kept for patients back from the hub
    release_days = IntegerField(default=2)  # … open to everyone this many days before
    series = CharField(null=True, index=True)  # days planned together (repeat)
    cancel_reason = TextField(null=True)
    state = CharField(choices=list(DAY_STATES.items()), default=DRAFT)
    uid = CharField(unique=True, default=lambda: uuid.uuid4().hex)  # stable iCalendar UID
    sequence = IntegerField(default=0)  # iCalendar SEQUENCE: +1 on every change
    created_by = ForeignKeyField(User)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("clinic", "date"), False),)

    workflow = DAY_FLOW
    audit_type = "service_day"

    @property
    def theme_label(self) -> str:
        return str(THEMES[self.theme])

    @property
    def mode_label(self) -> str:
        return str(MODES[self.mode])

    @property
    def bookable(self) -> bool:
        return self.state == PUBLISHED

    def reserve_held(self, today: dt.date) -> bool:
        """Reserved places are kept for patients back from the hub until the release date."""
        return bool(self.reserved) and today < self.date - dt.timedelta(days=self.release_days)

    def local_start(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.starts)

    def local_end(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.ends)

    # ---- queries ----------------------------------------------------------------------------
    @classmethod
    def visible_to(cls, user: User):
        """A clinic's own days; for anyone else (hub staff) only the days they staff, under
        need to know: while the day is open or closed less than the access window ago."""
        if user.organisation.is_clinic:
            return cls.select().where(cls.clinic == user.organisation_id)
        staffed = DayStaff.select(DayStaff.day).where(DayStaff.user == user.id)
        return cls.select().where(cls.id.in_(staffed), cls.state != DRAFT, cls.access_window())

    @classmethod
    def joined(cls, query):
        query = query.select_extend(Place, Organisation).switch(cls).join(Place)
        return query.switch(cls).join(Organisation)

    @classmethod
    def between(cls, user: User, first: dt.date, last: dt.date):
        """The days this user sees from `first` to `last` (local dates), in time order."""
        query = cls.joined(cls.visible_to(user)).where(cls.date.between(first, last))
        return query.order_by(cls.date, cls.starts, cls.id)

    @classmethod
    def staffed_by(cls, user: User):
        return cls.select().join(DayStaff).where(DayStaff.user == user.id)

    # ---- planning ---------------------------------------------------------------------------
    @classmethod
    def plan(
        cls, user: User, *, date: dt.date, starts: dt.time, ends: dt.time, place: Place,
        capacity: int, staff=(), repeat: str = "", times: int = 1, **fields,
    ) -> list["ServiceDay"]:  # fmt: skip
        """Draft days (one, or `times` repeated weekly or monthly) with their slots and staff."""
        if not (user.has_role(*CLINIC_STAFF) and user.organisation.is_clinic):
            raise Refused(_l("Only clinic doctors and nurses plan service days."))
        if place.clinic_id != user.organisation_id:
            raise Refused(_l("Choose one of your clinic's places."))
        dates = repeat_dates(date, repeat, times)
        series = uuid.uuid4().hex if len(dates) > 1 else None
        now = utcnow()
        days = []
        with write_transaction():
            for day_date in dates:
                day = cls.create(
                    clinic=user.organisation_id, place=place, date=day_date, starts=starts,
                    ends=ends, series=series, created_by=user, created_at=now, updated_at=now,
                    **fields,
                )  # fmt: skip
                Slot.generate(day, capacity)
                for member in staff:
                    DayStaff.create(day=day, user=member)
                ServiceDayEvent.create(
                    day=day, user=user, organisation=user.organisation_id, action="create",
                    to_state=DRAFT, at=now,
                )  # fmt: skip
                AuditEvent.write(user, "create", "service_day", day.id, day_date.isoformat())
                days.append(day)
        return days

    def edit(self, user: User, staff=None, **fields) -> None:
        """Change what a day says (theme, place, descriptions, staff): its feeds update."""
        self.check(user, "cancel")  # open days only, by their clinic's staff
        with write_transaction():
            fields |= {"updated_at": utcnow(), "sequence": ServiceDay.sequence + 1}
            ServiceDay.update(**fields).where(ServiceDay.id == self.id).execute()
            if staff is not None:
                DayStaff.delete().where(DayStaff.day == self.id).execute()
                for member in staff:
                    DayStaff.create(day=self, user=member)
            AuditEvent.write(user, "edit", "service_day", self.id)

    # ---- the moves (DAY_FLOW) ---------------------------------------------------------------
    def _move(self, user: User, name: str, note: str | None = None, **fields) -> None:
        self.transition(user, name, note=note, sequence=self.sequence + 1, **fields)

    def publish(self, user: User) -> None:
        self._move(user, "publish")

    def unpublish(self, user: User) -> None:
        self._move(user, "unpublish")

    def complete(self, user: User) -> None:
        self._move(user, "complete")

    def cancel(self, user: User, reason: str) -> None:
        """Cancel the day: every patient booked or waiting lands on the list to call."""
        from clinic.models.bookings import Booking

        self.check(user, "cancel")
        if not (reason or "").strip():
            raise Refused(_l("Give the reason for cancelling."))
        with write_transaction():
            self._move(user, "cancel", note=reason, cancel_reason=reason)
            Booking.to_call_for_cancelled_day(self)

    # ---- staff --------------------------------------------------------------------------------
    def staff(self):
        return (
            User.select(User, Organisation)
            .join(DayStaff)
            .switch(User)
            .join(Organisation)
            .where(DayStaff.day == self.id)
            .order_by(User.name)
        )

    @staticmethod
    def possible_staff(clinic: Organisation):
        """Users of the clinic and of its hubs who may staff its days."""
        hubs = clinic.hubs().select(Organisation.id)  # a subquery: one statement
        return (
            User.select(User, Organisation)
            .join(Organisation)
            .where(User.active, (User.organisation == clinic.id) | User.organisation.in_(hubs))
            .order_by(Organisation.kind, User.name)
        )


def repeat_dates(first: dt.date, repeat: str, times: int) -> list[dt.date]:
    """`times` dates from `first`, a week or a month apart (the 31st falls on a month's last)."""
    times = max(1, min(times or 1, MAX_REPEAT)) if repeat else 1
    dates = []
    for n in range(times):
        if repeat == "weekly":
            dates.append(first + dt.timedelta(weeks=n))
        else:
            month = first.month - 1 + n
            year, month = first.year + month // 12, month % 12 + 1
            last = calendar.monthrange(year, month)[1]
            dates.append(dt.date(year, month, min(first.day, last)))
    return dates


class Slot(BaseModel):
    """A time slot of a day (home mode: one slot for all the visits). `booked` counts the
    places taken; the database refuses more than `capacity`."""

    day = ForeignKeyField(ServiceDay, backref="slots", on_delete="CASCADE")
    starts = TimeField()
    ends = TimeField()
    capacity = IntegerField(constraints=[Check("capacity >= 0")])
    reserved = IntegerField(default=0)
    booked = IntegerField(default=0, constraints=[Check("booked >= 0")])
    reserved_booked = IntegerField(default=0, constraints=[Check("reserved_booked >= 0")])

    class Meta:
        constraints = [Check("booked <= capacity")]

    @classmethod
    def generate(cls, day: ServiceDay, capacity: int) -> None:
        """Centre mode: slots of `slot_minutes` from start to end; home: one for the visits."""
        start, end = day.local_start(), day.local_end()
        step = dt.timedelta(minutes=day.slot_minutes) if day.mode == CENTRE else end - start
        reserved = min(day.reserved, capacity)
        while start + step <= end:
            cls.create(
                day=day, starts=start.time(), ends=(start + step).time(), capacity=capacity,
                reserved=reserved,
            )  # fmt: skip
            start += step

    @classmethod
    def of_day(cls, day: ServiceDay):
        return cls.select().where(cls.day == day.id).order_by(cls.starts)

    @property
    def free(self) -> int:
        return self.capacity - self.booked

    def set_capacity(self, user: User, capacity: int) -> bool:
        """Change the capacity, never below what is booked (False: refused, nothing changed)."""
        with write_transaction():
            changed = (
                Slot.update(capacity=capacity, reserved=min(self.reserved, capacity))
                .where(Slot.id == self.id, Slot.booked <= capacity)
                .execute()
            )
            if changed:
                AuditEvent.write(user, "slot_capacity", "service_day", self.day_id, str(capacity))
        return bool(changed)


class DayStaff(BaseModel):
    day = ForeignKeyField(ServiceDay, on_delete="CASCADE")
    user = ForeignKeyField(User)

    class Meta:
        indexes = ((("day", "user"), True),)


class ServiceDayEvent(TimelineEvent):
    """Append-only timeline of a service day."""

    day = ForeignKeyField(ServiceDay, backref="events", index=True)

    record_field = "day"
    states = DAY_STATES


ServiceDay.timeline_model = ServiceDayEvent


CLINIC_FEED, STAFF_FEED = "clinic", "staff"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CalendarFeed(BaseModel):
    """A secret iCalendar address: its owner's clinic days, or the days its owner staffs.

    Only the token's hash is stored; the owner sees the address when it is made.
    """

    owner = ForeignKeyField(User)
    kind = CharField()  # clinic | staff
    organisation = ForeignKeyField(Organisation)
    token_hash = CharField(unique=True)
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)

    @classmethod
    def current(cls, user: User, kind: str) -> "CalendarFeed | None":
        return cls.get_or_none(cls.owner == user.id, cls.kind == kind, cls.revoked_at.is_null())

    @classmethod
    def regenerate(cls, user: User, kind: str) -> str:
        """Revoke the owner's feed of this kind and make a new one; returns the new token."""
        token = secrets.token_urlsafe(24)
        with write_transaction():
            cls.revoke(user, kind)
            cls.create(
                owner=user, kind=kind, organisation=user.organisation_id, token_hash=_hash(token)
            )
            AuditEvent.write(user, "feed_created", "calendar_feed", None, kind)
        return token

    @classmethod
    def revoke(cls, user: User, kind: str) -> None:
        cls.update(revoked_at=utcnow()).where(
            cls.owner == user.id, cls.kind == kind, cls.revoked_at.is_null()
        ).execute()

    @classmethod
    def by_token(cls, token: str) -> "CalendarFeed | None":
        feed = (
            cls.select(cls, User, Organisation)
            .join(User)
            .switch(cls)
            .join(Organisation)
            .where(cls.token_hash == _hash(token), cls.revoked_at.is_null(), User.active)
            .first()
        )
        # A user moved to another organisation loses the feeds of the old one.
        return feed if feed and feed.owner.organisation_id == feed.organisation_id else None

    def days(self):
        """The days this feed publishes (never drafts): published, completed or cancelled."""
        if self.kind == CLINIC_FEED:
            query = ServiceDay.select().where(ServiceDay.clinic == self.organisation_id)
        else:
            query = ServiceDay.staffed_by(self.owner)
        return ServiceDay.joined(query.where(ServiceDay.state != DRAFT)).order_by(ServiceDay.date)


SERVICE_DAY_MODELS = [Place, ServiceDay, Slot, DayStaff, ServiceDayEvent, CalendarFeed]
