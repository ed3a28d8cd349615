"""iCalendar feeds of service days (RFC 5545, built with `icalendar`): no patient data.

Each published, completed or cancelled day is one VEVENT with a stable UID; its SEQUENCE and
LAST-MODIFIED change whenever the day changes, so phones update the event in place.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from icalendar import Calendar, Event

from clinic.models.service_days import CANCELLED, CLINIC_FEED, CalendarFeed, ServiceDay

PRODID = "-//Clinic//Family-doctor service days//EN"
UID_DOMAIN = "service-days.clinic"  # the UID never depends on the host name served


def calendar_for(feed: CalendarFeed) -> bytes:
    """The feed's calendar as bytes (in the owner's language)."""
    with force_locale(feed.owner.language or "en"):
        calendar = Calendar()
        calendar.add("prodid", PRODID)
        calendar.add("version", "2.0")
        calendar.add("method", "PUBLISH")
        name = feed.organisation.label() if feed.kind == CLINIC_FEED else feed.owner.name
        calendar.add("x-wr-calname", name)
        for day in feed.days():
            calendar.add_component(_event(day))
        calendar.add_missing_timezones()
        return calendar.to_ical()


def _event(day: ServiceDay) -> Event:
    zone = ZoneInfo(day.clinic.timezone or current_app.config["CLINIC_TIMEZONE"])
    changed = day.updated_at.replace(tzinfo=dt.UTC)
    event = Event()
    event.add("uid", f"{day.uid}@{UID_DOMAIN}")
    event.add("dtstamp", changed)
    event.add("last-modified", changed)
    event.add("sequence", day.sequence)
    event.add("dtstart", day.local_start().replace(tzinfo=zone))
    event.add("dtend", day.local_end().replace(tzinfo=zone))
    event.add("summary", f"{day.theme_label} · {day.clinic.label()}")
    event.add("location", f"{day.place.name}, {day.place.address}")
    lines = [day.mode_label, day.description_en or "", day.description_zh or ""]
    event.add("description", "\n".join(line for line in lines if line))
    event.add("status", "CANCELLED" if day.state == CANCELLED else "CONFIRMED")
    return event
