"""The worklist pages over a large register: p50/p95 server time and their query plans.

Run by `make bench-scale` (not by `make bench`: it loads millions of rows). For each engine it
builds a throw-away database with the app's schema and the demo data, bulk-loads BENCH_PATIENTS
synthetic patients (default 1,000,000, in clinics of 100,000, with `bench/search.py`'s loader)
and BENCH_REFERRALS referrals (default 200,000, spread over those clinics, all to the demo hub,
mostly closed as an old register's are), then requests each page in-process through Flask's
test client as a logged-in user and records every SQL statement the page ran, EXPLAINed.
PostgreSQL: BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test); a database
`clinic_bench` is created and dropped there. BENCH_ENGINES=sqlite runs one engine only.
"""

import datetime as dt
import logging
import os
import random
import re
import tempfile
import time

import search
from inprocess import SEARCH_HX, Page, demo_app, logged_in, search_as_the_page_does
from report import machine, write_section

from clinic import demo
from clinic.db import db, is_sqlite, utcnow
from clinic.models import Organisation, Patient, Referral, User
from clinic.models.referrals import (
    ACCEPTED,
    CANCELLED,
    CLOSED,
    COMPLETED,
    DECLINED,
    INFO_REQUESTED,
    PRIORITIES,
    SUBMITTED,
    UP,
    list_order,
)

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "1000000"))
REFERRALS = int(os.environ.get("BENCH_REFERRALS", "200000"))
ENGINES = os.environ.get("BENCH_ENGINES", "sqlite,postgresql").split(",")
REPEATS = int(os.environ.get("BENCH_REPEATS", "60"))
DOCTOR, NURSE = "doctor@bench.demo", "nurse@bench.demo"
# An old register: most referrals are long closed; a few hundred are open at any time.
STATE_MIX = [(CLOSED, 86), (DECLINED, 4), (CANCELLED, 4), (COMPLETED, 2), (ACCEPTED, 2),
             (SUBMITTED, 1.5), (INFO_REQUESTED, 0.5)]  # fmt: skip
ALIAS = re.compile(r'"(\w+)" AS "(t\d+)"')
LARGE_TABLES = ("patient", "patient_search_key", "identity_document", "referral")
SECONDS_PER_PAGE = float(os.environ.get("BENCH_SECONDS_PER_PAGE", "20"))
OWNER = {SUBMITTED: "hub", ACCEPTED: "hub", INFO_REQUESTED: "clinic", COMPLETED: "clinic"}


def load_referrals(clinics: list[int], hub: Organisation, rng: random.Random) -> float:
    """REFERRALS rows in bulk (peewee insert_many, 1,000 a statement), dated over five years."""
    started = time.perf_counter()
    service = hub.services.first()
    author = User.get(User.organisation == clinics[0]).id
    states = [s for s, _ in STATE_MIX]
    weights = [w for _, w in STATE_MIX]
    now = utcnow()
    first = Patient.select(Patient.id).where(Patient.clinic == clinics[0]).order_by(Patient.id)
    first_id = first.first().id
    per_clinic = search.PER_CLINIC
    rows = []
    for number in range(REFERRALS):
        clinic_index = number % len(clinics)
        state = rng.choices(states, weights)[0]
        created = now - dt.timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))
        owner = OWNER.get(state)
        owner = None if owner is None else hub.id if owner == "hub" else clinics[clinic_index]
        priority = rng.choice(list(PRIORITIES))
        submitted = created + dt.timedelta(minutes=5)
        # A back-referral names its follow-up, one to six months on (Today lists that day's).
        follow_up = (created + dt.timedelta(days=30 + number % 150)).date()
        rows.append({
            "direction": UP, "priority": priority, "reason": "Bench",
            "patient": first_id + clinic_index * per_clinic + rng.randrange(per_clinic),
            "from_org": clinics[clinic_index], "to_org": hub.id, "service": service.id,
            "state": state, "created_by": author, "created_at": created,
            "submitted_at": submitted, "updated_at": created, "owner": owner,
            "due_by": None if owner is None else created + dt.timedelta(hours=72),
            "br_follow_up_due": follow_up if state in (COMPLETED, CLOSED) else None,
            **list_order(state, priority, owner, submitted),
        })  # fmt: skip
        if len(rows) == 1000:
            with db.atomic():
                Referral.insert_many(rows).execute()
            rows = []
    if rows:
        with db.atomic():
            Referral.insert_many(rows).execute()
    db.execute_sql("ANALYZE" if is_sqlite() else "VACUUM ANALYZE referral")
    return time.perf_counter() - started


class Statements(logging.Handler):
    """The SQL statements peewee runs meanwhile (its debug log carries (sql, params))."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seen = []

    def emit(self, record):
        if isinstance(record.msg, tuple):
            self.seen.append(record.msg)


def selects_of(page: Page) -> list[tuple[str, list]]:
    """(SQL, parameters) of every SELECT (a list's starts WITH) one request of `page` runs."""
    logger, handler = logging.getLogger("peewee"), Statements()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        page.request()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.WARNING)
    return [(sql, params) for sql, params in handler.seen
            if sql.lstrip().upper().startswith(("SELECT", "WITH"))]  # fmt: skip


def plans(app, page: Page) -> list[tuple[str, str]]:
    """The query plan of every SELECT one request of `page` runs."""
    lines = []
    selects = selects_of(page)
    with app.app_context():
        for sql, params in selects:
            if is_sqlite():
                rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
                lines.append((sql, " / ".join(row[-1] for row in rows)))
            else:
                rows = db.execute_sql(f"EXPLAIN {sql}", params).fetchall()
                lines.append((sql, " / ".join(row[0].strip() for row in rows)))
    return lines


def full_scans(plans: list[tuple[str, str]]) -> list[str]:
    """Plan steps that read a whole large table: PostgreSQL rightly reads a table of ten rows
    whole, and SQLite's SCAN of a subquery or a constant row is over a bounded list."""
    scans = []
    for sql, line in plans:
        tables = dict((alias, table) for table, alias in ALIAS.findall(sql))
        for step in line.split(" / "):
            words = step.split()
            whole = step.startswith("SCAN ") and "USING" not in step
            if whole and tables.get(words[1], words[1]) in LARGE_TABLES:
                scans.append(f"{step} ({tables.get(words[1])})")
            if any(f"Seq Scan on {table} " in step for table in LARGE_TABLES):
                scans.append(step)
    return scans


def timings(page: Page) -> list[float]:
    for _ in range(5):
        assert page.request().status_code == 200, page.path
    measured, stop = [], time.monotonic() + SECONDS_PER_PAGE
    while len(measured) < REPEATS and (len(measured) < 10 or time.monotonic() < stop):
        started = time.perf_counter()
        response = page.request()
        measured.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (page.path, response.status_code)
    return measured


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(engine: str, url: str) -> dict:
    started = time.perf_counter()
    app = demo_app(url)
    rng = random.Random(PATIENTS)
    search.PER_CLINIC = min(PATIENTS, 100_000)
    with app.app_context():
        hub = Organisation.by_name(demo.HUB_NAME)
        clinics = []
        for n in range(max(1, PATIENTS // search.PER_CLINIC)):
            clinic = Organisation.create(name=f"Bench clinic {n}", kind="clinic")
            clinic.link_hub(hub)
            clinics.append(clinic.id)
        for email, role in ((DOCTOR, "doctor"), (NURSE, "nurse")):
            User.create_with_password(demo.DEMO_PASSWORD, email=email, name=email, role=role,
                                      organisation=clinics[0])  # fmt: skip
        _samples, patient_seconds = search.load(clinics, rng)
        referral_seconds = load_referrals(clinics, hub, rng)
        patient = (
            Referral.select(Referral.patient)
            .where(Referral.from_org == clinics[0], Referral.state == SUBMITTED)
            .first()
            .patient_id
        )
        db.close()
    pages = [
        ("Referral inbox (hub coordinator)", "coordinator@hub.demo", "/referrals/"),
        ("Inbox, needs our action", "coordinator@hub.demo", "/referrals/?needs=1"),
        ("Outbox with filters (clinic doctor)", DOCTOR,
         "/referrals/?state=closed&priority=urgent"),
        ("Today (hub coordinator)", "coordinator@hub.demo", "/today"),
        ("Today (clinic doctor)", DOCTOR, "/today"),
        ("Patient page (clinic doctor)", DOCTOR, f"/patients/{patient}"),
    ]  # fmt: skip
    clients = {email: logged_in(app, email) for email in {p[1] for p in pages} | {NURSE}}
    pages = [Page(label, clients[email], path, {}, 200) for label, email, path in pages]
    patients_page = clients[NURSE].get("/patients/").get_data(as_text=True)
    path, form = search_as_the_page_does(patients_page, "chan tai")
    pages.append(Page("Patient search as you type", clients[NURSE], path, SEARCH_HX, 200, form))
    results = []
    for page in pages:
        measured = timings(page)
        plan = plans(app, page)
        results.append((page.label, page.path, measured, plan, full_scans(plan)))
        print(f"{engine} {page.label:40} p50 {percentile(measured, .5):6.2f} ms "
              f"p95 {percentile(measured, .95):6.2f} ms  full scans: {full_scans(plan)}",
              flush=True)  # fmt: skip
    with app.app_context():
        db.close()
    db.obj.close_all()
    return {
        "engine": engine,
        "patient_seconds": patient_seconds,
        "referral_seconds": referral_seconds,
        "seconds": time.perf_counter() - started,
        "pages": results,
    }


def report(runs: list[dict], load_average: float, seconds: float) -> str:
    lines = [
        f"Command: `make bench-scale` (`bench/scale.py`; BENCH_PATIENTS={PATIENTS}, "
        f"BENCH_REFERRALS={REFERRALS}). Machine: {machine()}.",
        f"Data: the demo data plus {PATIENTS:,} synthetic patients in clinics of "
        f"{min(PATIENTS, 100_000):,} (loaded by `bench/search.py`'s loader) and {REFERRALS:,}",
        "referrals from those clinics to the demo hub over five years (86% closed, 8% declined or",
        "cancelled, 6% open: submitted, information requested, accepted, back-referral written;",
        "a written back-referral names a follow-up day one to six months on).",
        f"Each page requested {REPEATS} times (or for {SECONDS_PER_PAGE:g} s, at least 10 times)",
        "in-process (Flask test client, logged in), after 5 warm-ups.",
        "SQLite: file in a temp directory, WAL. PostgreSQL 15 on 127.0.0.1, database "
        f"`{search.PG_DATABASE}` (created and dropped).",
        f"Whole run: {seconds:.0f} s; 1-minute load average when it started: {load_average:.1f} "
        f"(now: {os.getloadavg()[0]:.1f}; other engineers' test suites share the 2 cores).",
        "",
        "| Engine | Page | URL | p50 (ms) | p95 (ms) | SELECTs | Full scan in plan |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in runs:
        for label, path, measured, plan, scans in r["pages"]:
            lines.append(
                f"| {r['engine']} | {label} | `{path}` | {percentile(measured, 0.5):.2f} | "
                f"{percentile(measured, 0.95):.2f} | {len(plan)} | "
                f"{'YES: ' + '; '.join(scans) if scans else 'no'} |"
            )
    lines += [""]
    for r in runs:
        lines.append(
            f"- {r['engine']}: patients loaded in {r['patient_seconds']:.0f} s, referrals in "
            f"{r['referral_seconds']:.0f} s, engine run {r['seconds']:.0f} s."
        )
    lines += ["", "Query plans (every SELECT the page ran, in order):", ""]
    for r in runs:
        for label, _path, _measured, plan, _scans in r["pages"]:
            lines.append(f"- {r['engine']}, {label}:")
            lines += [f"  - `{line[:700]}`" for _sql, line in plan]
    return "\n".join(lines)


def main() -> None:
    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in ENGINES:
            runs.append(run("SQLite", f"sqlite:///{tmp}/scale.db"))
        if "postgresql" in ENGINES:
            runs.append(run("PostgreSQL", search.postgres_url()))
            search.drop_postgres()
    write_section("At scale", report(runs, load_average, time.perf_counter() - started))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
