"""Service days: booking throughput under contention, and the month view with 10,000 days.

Run by `make bench`. For each engine (SQLite in a temp directory; PostgreSQL at BENCH_PG_URL,
default postgresql://postgres@127.0.0.1:5432/test, in a database `clinic_bench_sd` created and
dropped here): the demo data, then
- 8 threads (each its own connection, as 8 desks) book 400 different patients into one day
  (slots of capacity 50, waitlist on): bookings per second, and the slots never over capacity;
- 10,000 days in one clinic's calendar (two a day over 14 years): the month page as a
  logged-in doctor, in-process (query and template), median of 20 requests.
Writes the "Service days" section of docs/benchmarks.md.
"""

import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg2
from report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clinic import create_app, demo  # noqa: E402
from clinic.db import db, init_schema  # noqa: E402
from clinic.models import Booking, Patient, Place, ServiceDay, Slot, User  # noqa: E402

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = "clinic_bench_sd"
DESKS, BOOKINGS, DAYS = 8, 400, 10_000


def app_for(url: str):
    # CSRF off for this in-process client only (the month page is what is timed).
    settings = {"DATABASE_URL": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}
    app = create_app(settings)
    with app.app_context():
        init_schema()
        demo.load()
    return app


def booking_throughput(app) -> tuple[float, int]:
    with app.app_context():
        doctor = User.get(User.email == "doctor@jinzhou.demo")
        place = Place.get(Place.clinic == doctor.organisation_id)
        (day,) = ServiceDay.plan(
            doctor, date=dt.date.today() + dt.timedelta(days=30), starts=dt.time(9),
            ends=dt.time(13), place=place, capacity=50, theme="chronic", slot_minutes=30,
        )  # fmt: skip
        day.publish(doctor)
        slots = [s.id for s in Slot.select().where(Slot.day == day.id)]
        born = dt.date(1950, 1, 1)
        people = [
            Patient.create(
                clinic=doctor.organisation_id, chinese_name="測試", english_name=f"TEST, {n}",
                sex="F", date_of_birth=born, residency="hk",
            ).id
            for n in range(BOOKINGS)
        ]  # fmt: skip
        db.close()
    barrier = threading.Barrier(DESKS)
    errors = []

    def desk(mine):
        with app.app_context():
            slot_rows = {s.id: s for s in Slot.select().where(Slot.id.in_(slots))}
            barrier.wait()
            for n, patient_id in enumerate(mine):
                slot = slot_rows[slots[n % len(slots)]]
                try:
                    Booking.book(doctor, slot, Patient.get_by_id(patient_id),
                                 today=dt.date.today(), waitlist=True)  # fmt: skip
                except Exception as error:  # counted, and reported below
                    errors.append(repr(error))
            db.close()

    workers = [threading.Thread(target=desk, args=(people[i::DESKS],)) for i in range(DESKS)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    with app.app_context():
        over = Slot.select().where(Slot.booked > Slot.capacity).count()
        assert over == 0 and not errors, (over, errors[:3])
        booked = Booking.select().where(Booking.day == day.id).count()
    return booked / elapsed, booked


def month_view(app) -> float:
    with app.app_context():
        doctor = User.get(User.email == "doctor@jinzhou.demo")
        place = Place.get(Place.clinic == doctor.organisation_id)
        first = dt.date.today() - dt.timedelta(days=DAYS // 4)
        rows = [
            {
                "clinic": doctor.organisation_id, "place": place.id,
                "date": first + dt.timedelta(days=n // 2), "starts": dt.time(9 + n % 2 * 4),
                "ends": dt.time(12 + n % 2 * 4), "theme": "chronic", "mode": "centre",
                "state": "published", "uid": uuid.uuid4().hex, "created_by": doctor.id,
            }
            for n in range(DAYS)
        ]  # fmt: skip
        with db.atomic():
            for start in range(0, len(rows), 500):
                ServiceDay.insert_many(rows[start : start + 500]).execute()
        db.close()
    client = app.test_client()
    client.post("/login", data={"email": "doctor@jinzhou.demo", "password": demo.DEMO_PASSWORD})
    month = dt.date.today().strftime("%Y-%m")
    times = []
    for _ in range(20):
        start = time.perf_counter()
        response = client.get(f"/service-days/?month={month}")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times) * 1000


def run(label: str, url: str) -> str:
    app = app_for(url)
    rate, booked = booking_throughput(app)
    month_ms = month_view(app)
    db.close()
    db.obj.close_all()
    return f"| {label} | {rate:,.0f} | {booked} | {month_ms:,.0f} ms |"


def main() -> None:
    started = time.time()
    load = os.getloadavg()[0]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        lines.append(run("SQLite (WAL)", f"sqlite:///{tmp}/bench.db"))
    admin = psycopg2.connect(PG_SERVER)
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
    admin.cursor().execute(f"CREATE DATABASE {PG_DATABASE}")
    try:
        server = PG_SERVER.rsplit("/", 1)[0]
        lines.append(run("PostgreSQL", f"{server}/{PG_DATABASE}"))
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        admin.close()
    body = f"""Command: `make bench` (`bench/service_days.py`). Machine: {machine()}.
Bookings: {DESKS} threads, each its own database connection (8 desks at once), book
{BOOKINGS} different patients into one day of 8 slots × 50 places, waitlist on; every booking
is the conditional update of the slot's count plus the insert, in one write transaction.
After the run no slot is over capacity (checked). Month view: the month page of a clinic
holding {DAYS:,} service days (two a day over 14 years), as a logged-in doctor, in-process
(routing, query, template), median of 20. Whole run: {time.time() - started:.0f} s;
1-minute load average when it started: {load:.1f} (other work shares the cores).

| Engine | Bookings/s (8 desks, one day) | Bookings made | Month view, {DAYS:,} days |
|---|---:|---:|---:|
""" + "\n".join(lines)
    write_section("Service days", body)
    print(body)


if __name__ == "__main__":
    main()
