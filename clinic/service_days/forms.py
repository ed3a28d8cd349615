"""Service-day forms: each owns its validation, with messages in the user's language."""

import datetime as dt

from flask_babel import format_time
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from clinic.forms import Form, OnceForm, at_most, options
from clinic.models.service_days import MAX_CAPACITY, MAX_REPEAT, MODES, THEMES
from clinic.translation import lazy_gettext as _l

REPEATS = {"": _l("Once"), "weekly": _l("Every week"), "monthly": _l("Every month")}


def text(label, max_length=2000, rows=2, required=None):
    validators = [DataRequired(message=required)] if required else [Optional()]
    return TextAreaField(
        label, validators=[*validators, at_most(max_length)], render_kw={"rows": rows}
    )


def number(label, low, high, message, default=None, required=True):
    first = InputRequired(message=message) if required else Optional()
    return IntegerField(
        label, default=default, validators=[first, NumberRange(low, high, message=message)]
    )


class DayFields(Form):
    """What a day says: theme, place, descriptions and staff (editable after planning)."""

    theme = SelectField(_l("Theme"), choices=options(THEMES.items()), default="chronic")
    place = SelectField(
        _l("Place"), coerce=int, validators=[InputRequired(message=_l("Choose a place."))]
    )
    description_en = text(_l("Description in English"))
    description_zh = text(_l("Description in Chinese"))
    staff = SelectMultipleField(
        _l("Staff"), coerce=int, widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(), validators=[Optional()],
    )  # fmt: skip

    def __init__(self, *args, places=(), staff=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.places = {p.id: p for p in places}
        self.place.choices = options((p.id, p.name) for p in places)
        self.people = {u.id: u for u in staff}
        self.staff.choices = options((u.id, f"{u.name} · {u.organisation.label()}") for u in staff)

    def validate_place(self, field):
        if field.data not in self.places:
            raise ValidationError(_l("Choose a place."))

    def day_data(self) -> dict:
        """The fields as keyword arguments of ServiceDay.plan / edit."""
        return {
            "theme": self.theme.data,
            "place": self.places[self.place.data],
            "description_en": self.description_en.data or None,
            "description_zh": self.description_zh.data or None,
            "staff": [self.people[i] for i in self.staff.data or () if i in self.people],
        }


class PlanForm(DayFields):
    date = DateField(_l("Date"), validators=[InputRequired(message=_l("Give the date."))])
    starts = TimeField(
        _l("Start time"), validators=[InputRequired(message=_l("Give the start time."))]
    )
    ends = TimeField(_l("End time"), validators=[InputRequired(message=_l("Give the end time."))])
    mode = RadioField(_l("Mode"), choices=options(MODES.items()), default="centre")
    slot_minutes = number(
        _l("Slot length (minutes)"), 5, 240, _l("A slot lasts 5 to 240 minutes."), 30, False
    )
    capacity = number(
        _l("Capacity per slot (home visits: number of visits)"), 1, MAX_CAPACITY,
        _l("Capacity is 1 to %(max)d.", max=MAX_CAPACITY), 4,
    )  # fmt: skip
    reserved = number(
        _l("Places per slot kept for patients back from the hub"), 0, MAX_CAPACITY,
        _l("Reserved places are 0 to the capacity."), 0,
    )  # fmt: skip
    release_days = number(
        _l("Reserved places open to everyone this many days before"), 0, 60,
        _l("Give 0 to 60 days."), 2,
    )  # fmt: skip
    repeat = SelectField(_l("Repeat"), choices=options(REPEATS.items()), default="")
    times = number(
        _l("Number of days"), 1, MAX_REPEAT, _l("Repeat up to %(max)d days.", max=MAX_REPEAT), 1
    )

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def validate_date(self, field):
        if field.data and field.data < self.today:
            raise ValidationError(_l("The date is in the past."))

    def validate_ends(self, field):
        if self.starts.data and field.data and field.data <= self.starts.data:
            raise ValidationError(_l("The end time must be after the start time."))

    def validate_slot_minutes(self, field):
        if (
            self.mode.data != "centre"
            or self.ends.errors
            or not (self.starts.data and self.ends.data)
        ):
            return
        if not field.data:
            raise ValidationError(_l("Give the slot length."))
        minutes = _minutes(self.ends.data) - _minutes(self.starts.data)
        if minutes % field.data:
            raise ValidationError(_l(
                "Slots of %(length)d minutes do not fill %(start)s to %(end)s: %(rest)d minutes "
                "would be left over. Choose a length that divides the hours, or change the end "
                "time.", length=field.data, start=format_time(self.starts.data, "HH:mm"),
                end=format_time(self.ends.data, "HH:mm"), rest=minutes % field.data,
            ))  # fmt: skip

    def validate_reserved(self, field):
        if field.data and self.capacity.data and field.data > self.capacity.data:
            raise ValidationError(_l("Reserved places are 0 to the capacity."))

    def day_data(self) -> dict:
        centre = self.mode.data == "centre"
        return super().day_data() | {
            "date": self.date.data, "starts": self.starts.data, "ends": self.ends.data,
            "mode": self.mode.data, "slot_minutes": self.slot_minutes.data if centre else None,
            "capacity": self.capacity.data, "reserved": self.reserved.data or 0,
            "release_days": self.release_days.data, "repeat": self.repeat.data,
            "times": self.times.data if self.repeat.data else 1,
        }  # fmt: skip


def _minutes(time: dt.time) -> int:
    return time.hour * 60 + time.minute


class CancelForm(Form):
    reason = text(_l("Reason for cancelling"), required=_l("Give the reason for cancelling."))


class BookingForm(OnceForm):
    slot = SelectField(
        _l("Slot"), coerce=int, validators=[InputRequired(message=_l("Choose a slot."))]
    )
    waitlist = BooleanField(_l("If the slot is full, put the patient on its waitlist"))
    any_slot = BooleanField(_l("The patient accepts any slot of the day"))
    address = text(_l("Address for the visit"), 500)
    access_notes = text(_l("Access notes (lift, stairs, door code, pets)"), 500)
    carer_contact = StringField(_l("Carer contact"), validators=[Optional(), at_most(200)])

    def __init__(self, *args, slots=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.slots = {s.id: s for s in slots}
        self.slot.choices = options(
            (s.id, f"{s.starts:%H:%M}–{s.ends:%H:%M} ({s.free}/{s.capacity})") for s in slots
        )

    def validate_slot(self, field):
        if field.data not in self.slots:
            raise ValidationError(_l("Choose a slot."))

    def home_data(self) -> dict:
        return {
            "address": self.address.data or None,
            "access_notes": self.access_notes.data or None,
            "carer_contact": self.carer_contact.data or None,
        }


class CapacityForm(Form):
    capacity = number(
        _l("Capacity"), 1, MAX_CAPACITY, _l("Capacity is 1 to %(max)d.", max=MAX_CAPACITY)
    )


class PlaceForm(Form):
    name = StringField(
        _l("Place name"), validators=[DataRequired(message=_l("Give the name.")), at_most(120)]
    )
    address = text(_l("Address"), 500, required=_l("Give the address."))
