"""Calendar feeds (iCalendar, parsed with `icalendar`) and the FHIR export of a service day."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from fhirclient.models.bundle import Bundle
from icalendar import Calendar

from clinic.models import AuditEvent, Booking, CalendarFeed, Slot

from conftest import user

ADDRESS = re.compile(r"(/service-days/feed/[A-Za-z0-9_-]+\.ics)")


def new_address(client, kind="clinic") -> str:
    page = client.post(f"/service-days/feeds/{kind}").get_data(as_text=True)
    return ADDRESS.search(page).group(1)


def events(client, url) -> list:
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    return list(Calendar.from_ical(response.data).walk("VEVENT"))


def test_the_clinic_feed_has_each_published_day_in_local_time(
    app, doctor, make_service_day, make_patient
):
    day = make_service_day(starts=dt.time(9, 30), ends=dt.time(11, 30))
    draft = make_service_day(state="draft")
    slot = Slot.select().where(Slot.day == day.id).first()
    patient = make_patient(chinese_name="陳秘密", english_name="SECRET, Patient")
    Booking.book(user("doctor@jinzhou.demo"), slot, patient, today=dt.date.today())
    url = new_address(doctor)
    anonymous = app.test_client()  # a phone: no session, only the secret address
    response = anonymous.get(url)
    body = response.get_data(as_text=True)
    assert "陳秘密" not in body and "SECRET" not in body and "+852" not in body
    calendar = Calendar.from_ical(response.data)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Asia/Hong_Kong"]
    found = {str(e["UID"]).split("@")[0]: e for e in calendar.walk("VEVENT")}
    assert day.uid in found and draft.uid not in found
    event = found[day.uid]
    start = event.decoded("DTSTART")
    assert start == dt.datetime.combine(day.date, dt.time(9, 30), ZoneInfo("Asia/Hong_Kong"))
    assert start.astimezone(dt.UTC).time() == dt.time(1, 30)
    assert str(event["LOCATION"]).startswith("Test centre")
    assert str(event["STATUS"]) == "CONFIRMED"


def test_an_edit_changes_sequence_and_the_etag_and_cancelling_is_status_cancelled(
    app, doctor, make_service_day
):
    day = make_service_day()
    url = new_address(doctor)
    phone = app.test_client()
    first = phone.get(url)
    etag = first.headers["ETag"]
    assert phone.get(url, headers={"If-None-Match": etag}).status_code == 304
    (before,) = [e for e in events(phone, url) if day.uid in str(e["UID"])]
    day.edit(user("doctor@jinzhou.demo"), description_en="Bring your blood-sugar diary")
    changed = phone.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    (after,) = [e for e in events(phone, url) if day.uid in str(e["UID"])]
    assert after["SEQUENCE"] > before["SEQUENCE"]
    assert after.decoded("LAST-MODIFIED") >= before.decoded("LAST-MODIFIED")
    assert str(after["UID"]) == str(before["UID"])
    doctor.post(f"/service-days/{day.id}/cancel", data={"reason": "Typhoon"})
    (cancelled,) = [e for e in events(phone, url) if day.uid in str(e["UID"])]
    assert str(cancelled["STATUS"]) == "CANCELLED"


def test_revoked_regenerated_and_invalid_addresses_are_404(app, doctor, make_service_day):
    make_service_day()
    phone = app.test_client()
    old = new_address(doctor)
    new = new_address(doctor)  # making a new one stops the old one
    assert phone.get(old).status_code == 404
    assert phone.get(new).status_code == 200
    doctor.post("/service-days/feeds/clinic/revoke")
    assert phone.get(new).status_code == 404
    assert phone.get("/service-days/feed/not-a-token.ics").status_code == 404
    assert CalendarFeed.select().where(CalendarFeed.revoked_at.is_null()).count() == 0
    assert AuditEvent.select().where(AuditEvent.action == "feed_revoked").exists()


def test_a_staff_feed_has_only_the_days_they_staff(app, coordinator, make_service_day):
    staffed = make_service_day()
    other = make_service_day()
    staffed.edit(user("doctor@jinzhou.demo"), staff=[user("coordinator@hub.demo")])
    assert coordinator.post("/service-days/feeds/clinic").status_code == 404  # no clinic feed
    uids = {
        str(e["UID"]).split("@")[0]
        for e in events(app.test_client(), new_address(coordinator, "staff"))
    }
    assert staffed.uid in uids and other.uid not in uids


@pytest.mark.parametrize("state", ["published", "draft", "cancelled"])
def test_the_fhir_export_validates(doctor, make_service_day, make_patient, state):
    day = make_service_day(capacity=1)
    slot = Slot.select().where(Slot.day == day.id).order_by(Slot.starts).first()
    people = [make_patient(chinese_name=n) for n in ("甲", "乙")]
    for patient in people:
        Booking.book(
            user("doctor@jinzhou.demo"), slot, patient, today=dt.date.today(), waitlist=True
        )
    if state == "draft":
        day.unpublish(user("doctor@jinzhou.demo"))
    elif state == "cancelled":
        day.cancel(user("doctor@jinzhou.demo"), "Typhoon")
    response = doctor.get(f"/service-days/{day.id}/fhir")
    assert response.mimetype == "application/fhir+json"
    bundle = Bundle(response.get_json(), strict=True)
    kinds = [e.resource.resource_type for e in bundle.entry]
    assert kinds.count("Schedule") == 1 and kinds.count("Slot") == 2
    appointments = [e.resource for e in bundle.entry if e.resource.resource_type == "Appointment"]
    assert sorted(a.status for a in appointments) == ["booked", "waitlist"]
    slots = [e.resource for e in bundle.entry if e.resource.resource_type == "Slot"]
    expected = {"published": {"busy", "free"}, "draft": {"busy-unavailable"},
                "cancelled": {"busy-unavailable"}}[state]  # fmt: skip
    assert {s.status for s in slots} == expected
    assert slots[0].start.isostring.endswith("+08:00")
