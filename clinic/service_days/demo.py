"""Demo service days: places per clinic, a published centre day today with bookings and a
waitlist, a home-visit day next week, and a day at the second clinic."""

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from clinic.models import Booking, Organisation, Patient, Place, ServiceDay, Slot, User

PLACES = {
    "Jinzhou Family-Doctor Clinic": (
        ("Jinzhou Community Health Centre 金洲社區健康中心", "3/F, 18 Jinzhou Road, Nansha"),
        ("Hengli Neighbourhood Centre 橫瀝鄰里中心", "1 Hengli Avenue, Nansha"),
    ),
    "Huangge Family-Doctor Clinic": (
        ("Huangge Community Health Centre 黃閣社區健康中心", "22 Huangge Road, Nansha"),
    ),
}


def load(clinic_a: str, clinic_b: str, doctor_email: str, specialist_email: str) -> None:
    zone = current_app.config["CLINIC_TIMEZONE"] if has_app_context() else "Asia/Hong_Kong"
    today = dt.datetime.now(ZoneInfo(zone)).date()
    doctor = User.get(User.email == doctor_email)
    specialist = User.get(User.email == specialist_email)
    places = _places()
    centre = _day(doctor, places[clinic_a][0], today, capacity=2, staff=[doctor, specialist],
                  description_en="Blood pressure, blood sugar and medication review.",
                  description_zh="血壓、血糖及藥物覆診。")  # fmt: skip
    patients = list(Patient.select().where(Patient.clinic == doctor.organisation_id).limit(8))
    first_slot = Slot.select().where(Slot.day == centre.id).order_by(Slot.starts).first()
    for patient in patients[:4]:
        Booking.book(doctor, first_slot, patient, today=today, waitlist=True)
    attended = Booking.select().where(Booking.day == centre.id).order_by(Booking.id).first()
    attended.attend(doctor)
    home = _day(doctor, places[clinic_a][1], today + dt.timedelta(days=7), capacity=3,
                mode="home", slot_minutes=None, theme="elderly")  # fmt: skip
    (home_slot,) = Slot.select().where(Slot.day == home.id)
    for patient in patients[4:6]:
        Booking.book(
            doctor, home_slot, patient, today=today, address=patient.address,
            access_notes="No lift: 4/F walk-up", carer_contact="Daughter +852 9123 4567",
        )  # fmt: skip
    other_doctor = User.get(User.organisation == Organisation.by_name(clinic_b).id)
    other = _day(other_doctor, places[clinic_b][0], today + dt.timedelta(days=3), capacity=3,
                 theme="vaccination")  # fmt: skip
    other_patient = Patient.select().where(Patient.clinic == other.clinic_id).first()
    other_slot = Slot.select().where(Slot.day == other.id).order_by(Slot.starts).first()
    Booking.book(other_doctor, other_slot, other_patient, today=today)


def _places() -> dict:
    made = {}
    for clinic_name, places in PLACES.items():
        clinic = Organisation.by_name(clinic_name)
        made[clinic_name] = [
            Place.create(clinic=clinic, name=name, address=address) for name, address in places
        ]
    return made


def _day(user: User, place: Place, date: dt.date, capacity: int, **fields) -> ServiceDay:
    values = {"theme": "chronic", "starts": dt.time(9), "ends": dt.time(11), "slot_minutes": 30}
    (day,) = ServiceDay.plan(user, date=date, place=place, capacity=capacity, **values | fields)
    day.publish(user)
    return day
