"""Family-doctor service days: planned days at community health centres, bookings, feeds."""

import re

from flask import Flask

from clinic.domains import AuditDetail, Domain, register
from clinic.translation import lazy_gettext as _l

RECORD_TYPES = {
    "service_day": _l("Service day"),
    "booking": _l("Service-day booking"),
    "service_booking": _l("Service-day booking"),
    "place": _l("Place"),
    "calendar_feed": _l("Calendar address"),
}
AUDIT_LABELS = {
    ("service_day", "create"): _l("Service day planned"),
    ("service_day", "edit"): _l("Service day changed"),
    ("service_day", "publish"): _l("Service day published"),
    ("service_day", "unpublish"): _l("Service day unpublished"),
    ("service_day", "complete"): _l("Service day completed"),
    ("service_day", "cancel"): _l("Service day cancelled"),
    ("service_day", "slot_capacity"): _l("Slot capacity changed"),
    ("service_day", "visit_order"): _l("Visiting order changed"),
    (None, "book"): _l("Service day booked"),
    (None, "waitlist"): _l("Put on a service-day waitlist"),
    (None, "promote"): _l("Moved up from a waitlist"),
    (None, "walk_in"): _l("Walk-in added"),
    (None, "attend"): _l("Attendance recorded"),
    (None, "undo"): _l("Attendance undone"),
    (None, "called"): _l("Patient called"),
    ("patient", "no_show"): _l("No-show recorded"),
    ("patient", "cancel"): _l("Service-day booking cancelled"),
    (None, "feed_created"): _l("Calendar address made"),
    (None, "feed_revoked"): _l("Calendar address stopped"),
}


def _audit_details() -> tuple:
    from clinic.models.bookings import BOOKING_STATES
    from clinic.models.service_days import CLINIC_FEED, DAY_STATES, STAFF_FEED

    said = {
        "timeline": _l("its timeline"),
        "roster": _l("service day roster"),
        "to call": _l("patients to call"),
        "service day: choose patient": _l("service day: choosing the patient"),
    }
    feeds = {
        "kind": {CLINIC_FEED: _l("Our clinic's service days"), STAFF_FEED: _l("The days I staff")}
    }
    return (
        *(AuditDetail(re.escape(text), label) for text, label in said.items()),
        AuditDetail(r"patient (?P<id>[0-9]+)", _l("patient #%(id)s"), object_type="booking"),
        AuditDetail(
            r"service day (?P<id>[0-9]+): booking → (?P<state>\w+)",
            _l("service day #%(id)s: booking → %(state)s"),
            {"state": BOOKING_STATES},
        ),
        AuditDetail(r"(?P<kind>\w+)", "%(kind)s", feeds, object_type="calendar_feed"),
        # A move's row: the state it moved the day to.
        AuditDetail(r"(?P<state>\w+)", "%(state)s", {"state": DAY_STATES}, "service_day"),
    )


def init_app(app: Flask) -> None:
    from clinic.models.bookings import Booking
    from clinic.service_days.views import bp, nav_count, today_section

    app.register_blueprint(bp)
    register(
        app,
        Domain(
            name="service_days",
            nav_template="service_days/_nav.html",
            nav_count=nav_count,
            today=today_section,
            today_template="service_days/_today.html",
            patient_template="service_days/_patient.html",
            hub_patient_ids=Booking.patient_ids_visible_to,
            record_types=RECORD_TYPES,
            audit_labels=AUDIT_LABELS,
            audit_details=_audit_details(),
        ),
    )
