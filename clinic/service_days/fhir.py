"""FHIR R4 export of a service day: Schedule, Slot and Appointment resources in a Bundle.

Validated by `fhirclient`'s R4 models in strict mode, like the referral export.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from fhirclient.models.bundle import Bundle
from flask import current_app, url_for

from clinic.models.bookings import ATTENDED, BOOKED, CANCELLED, NO_SHOW, WAITLISTED, Booking
from clinic.models.service_days import PUBLISHED, ServiceDay, Slot
from clinic.referrals.fhir import _base, _instant, _organisation, _uuid

APPOINTMENT_STATUS = {
    BOOKED: "booked",
    WAITLISTED: "waitlist",
    CANCELLED: "cancelled",
    ATTENDED: "fulfilled",
    NO_SHOW: "noshow",
}


def _local(day: ServiceDay, time: dt.time) -> str:
    zone = ZoneInfo(day.clinic.timezone or current_app.config["CLINIC_TIMEZONE"])
    return dt.datetime.combine(day.date, time, tzinfo=zone).isoformat()


def _location(day: ServiceDay) -> dict:
    return {
        "resourceType": "Location",
        "name": day.place.name,
        "address": {"text": day.place.address},
        "managingOrganization": {"reference": _uuid("Organization", day.clinic_id)},
    }


def _schedule(day: ServiceDay) -> dict:
    return {
        "resourceType": "Schedule",
        "active": day.is_open,
        "serviceType": [{"text": day.theme_label}],
        "actor": [{"reference": _uuid("Location", day.place_id), "display": day.place.name}],
        "planningHorizon": {"start": _local(day, day.starts), "end": _local(day, day.ends)},
        "comment": day.description_en or day.theme_label,
    }


def _slot(day: ServiceDay, slot: Slot) -> dict:
    if day.state != PUBLISHED:
        status = "busy-unavailable"
    else:
        status = "busy" if slot.booked >= slot.capacity else "free"
    return {
        "resourceType": "Slot",
        "schedule": {"reference": _uuid("Schedule", day.id)},
        "status": status,
        "start": _local(day, slot.starts),
        "end": _local(day, slot.ends),
        "comment": f"{slot.booked}/{slot.capacity}",
    }


def _appointment(day: ServiceDay, booking: Booking, slots: dict) -> dict:
    resource = {
        "resourceType": "Appointment",
        "status": APPOINTMENT_STATUS[booking.state],
        "serviceType": [{"text": day.theme_label}],
        "participant": [
            {
                "actor": {
                    "reference": _uuid("Patient", booking.patient_id),
                    "display": booking.patient.display_name,
                },
                "status": "accepted",
            },
            {"actor": {"reference": _uuid("Location", day.place_id)}, "status": "accepted"},
        ],
        "created": _instant(booking.created_at)[:10],
    }
    slot = slots.get(booking.slot_id)
    if slot is not None:
        resource["slot"] = [{"reference": _uuid("Slot", slot.id)}]
        resource["start"] = _local(day, slot.starts)
        resource["end"] = _local(day, slot.ends)
    return resource


def bundle(day: ServiceDay) -> dict:
    slots = {s.id: s for s in Slot.of_day(day)}
    resources = [
        ("Organization", day.clinic_id, _organisation(day.clinic)),
        ("Location", day.place_id, _location(day)),
        ("Schedule", day.id, _schedule(day)),
        *(("Slot", s.id, _slot(day, s)) for s in slots.values()),
        *(("Appointment", b.id, _appointment(day, b, slots)) for b in Booking.of_day(day)),
    ]
    data = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(day.updated_at),
        "identifier": {
            "system": f"{_base()}/sid/service-day",
            "value": url_for("service_days.fhir", day_id=day.id),
        },
        "entry": [
            {"fullUrl": _uuid(kind, key), "resource": resource} for kind, key, resource in resources
        ],
    }
    return Bundle(data, strict=True).as_json()
