"""Drug consultations at scale: the pharmacist queue and the past-answers library over
BENCH_CONSULTATIONS questions (default 100,000): p50/p95 server time and their query plans.

Run by `make bench-consultations`. For each engine (SQLite in a temp directory; PostgreSQL at
BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test, in a database
`clinic_bench_consult` created and dropped here): the demo data (its catalogue of ~30 drugs
and ~60 approved phrases), then the questions bulk-loaded from the two demo clinics to the
demo hub over three years, mostly long answered and acknowledged as an old service's are, a
guidance line each for the answered ones; then each page requested in-process (Flask test
client, logged in) and every SELECT it ran EXPLAINed. Writes the "Drug consultations at
scale" section of docs/benchmarks.md.
"""

import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from peewee import fn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale
from inprocess import Page, demo_app, logged_in
from report import machine, write_section

from clinic import demo
from clinic.db import db, is_sqlite, utcnow
from clinic.models import Drug, Organisation, Patient, Phrase, User
from clinic.models.consultations import (
    QUESTION_TYPES,
    URGENCIES,
    Consultation,
    GuidanceLine,
    drug_key,
)

COUNT = int(os.environ.get("BENCH_CONSULTATIONS", "100000"))
ENGINES = os.environ.get("BENCH_ENGINES", "sqlite,postgresql").split(",")
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = "clinic_bench_consult"
PHARMACIST, NURSE = "pharmacist@hub.demo", "nurse@jinzhou.demo"
# An old service: nearly every question long answered and acknowledged; some 500 open.
STATE_MIX = [("acknowledged", 93.5), ("cancelled", 6), ("answered", 0.2), ("open", 0.1),
             ("claimed", 0.1), ("info_requested", 0.05), ("checking", 0.05)]  # fmt: skip
OWNER = {"open": "hub", "claimed": "hub", "checking": "hub", "info_requested": "clinic",
         "answered": "clinic"}  # fmt: skip
# Patients, referrals are the demo's few here: the large tables are the consultations'.
scale.LARGE_TABLES = ("consultation", "guidance_line", "consultation_event")


def load(rng: random.Random) -> float:
    """COUNT questions in bulk (1,000 a statement) and a guidance line per answered one."""
    started = time.perf_counter()
    hub = Organisation.by_name(demo.HUB_NAME)
    clinics = [Organisation.by_name(demo.CLINIC_A), Organisation.by_name(demo.CLINIC_B)]
    askers = {c.id: User.get(User.organisation == c, User.role == "nurse").id for c in clinics}
    pharmacist = User.get(User.email == PHARMACIST).id
    patients = {
        c.id: [p.id for p in Patient.select(Patient.id).where(Patient.clinic == c)] for c in clinics
    }
    drugs = list(Drug.select().where(Drug.hub == hub))
    doses = [p.id for p in Phrase.usable("dose", hub=hub.id)]
    states, weights = [s for s, _ in STATE_MIX], [w for _, w in STATE_MIX]
    now = utcnow()
    rows = []
    for number in range(COUNT):
        clinic = clinics[number % 2].id
        state = rng.choices(states, weights)[0]
        created = now - dt.timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        if state in OWNER:  # open ones are recent
            created = now - dt.timedelta(minutes=rng.randrange(5 * 24 * 60))
        drug = rng.choice(drugs)
        named = rng.choice([drug.generic_name, drug.name_hant, drug.name_hans])
        answered = state in ("answered", "acknowledged", "checking")
        due = created + dt.timedelta(hours=rng.choice([1, 4, 72]))
        owner = OWNER.get(state)
        rows.append({
            "clinic": clinic, "hub": hub.id, "patient": rng.choice(patients[clinic]),
            "asked_by": askers[clinic], "drug": drug.id, "drug_text": named,
            "drug_key": drug_key(named), "question_type": rng.choice(list(QUESTION_TYPES)),
            "details": "Bench question", "urgency": rng.choice(list(URGENCIES)), "state": state,
            "owner": None if owner is None else hub.id if owner == "hub" else clinic,
            "due_by": due if owner else None, "answer_by": due, "created_at": created,
            "updated_at": created + dt.timedelta(hours=2),
            "claimed_by": pharmacist if state not in ("open", "cancelled") else None,
            "answered_by": pharmacist if answered else None,
            "answered_at": created + dt.timedelta(hours=1) if answered else None,
            "answer_note": "Bench answer" if answered else None,
        })  # fmt: skip
        if len(rows) == 1000:
            _insert(rows, doses, rng)
            rows = []
    if rows:
        _insert(rows, doses, rng)
    db.execute_sql("ANALYZE" if is_sqlite() else "VACUUM ANALYZE")
    return time.perf_counter() - started


def _insert(rows: list[dict], doses: list[int], rng: random.Random) -> None:
    with db.atomic():
        first = Consultation.select(fn.MAX(Consultation.id)).scalar() or 0
        Consultation.insert_many(rows).execute()
        lines = [
            {"consultation": first + n + 1, "position": 1, "drug_text": row["drug_text"],
             "dose": rng.choice(doses)}
            for n, row in enumerate(rows) if row["answered_at"] and doses
        ]  # fmt: skip
        if lines:
            GuidanceLine.insert_many(lines).execute()


def run(engine: str, url: str) -> dict:
    started = time.perf_counter()
    app = demo_app(url)
    with app.app_context():
        load_seconds = load(random.Random(COUNT))
        total = Consultation.select().count()
        db.close()
    pages = [
        ("Pharmacist queue (open, overdue first)", PHARMACIST, "/consultations/"),
        ("Queue filtered (immediate, dosing)", PHARMACIST,
         "/consultations/?state=open&urgency=immediate&type=dosing"),
        ("Pharmacist's Today (the queue)", PHARMACIST, "/today"),
        ("Library by English name (clinic nurse)", NURSE, "/consultations/library?drug=amlo"),
        ("Library by Simplified name + type", NURSE,
         "/consultations/library?drug=%E6%B0%A8%E6%B0%AF&type=dosing"),
        ("Library by question type only", PHARMACIST, "/consultations/library?type=border"),
    ]  # fmt: skip
    clients = {PHARMACIST: logged_in(app, PHARMACIST), NURSE: logged_in(app, NURSE)}
    results = []
    for label, email, path in pages:
        page = Page(label, clients[email], path, {}, 200)
        measured = scale.timings(page)
        plan = scale.plans(app, page)
        scans = scale.full_scans(plan)
        results.append((label, path, measured, plan, scans))
        print(f"{engine} {label:42} p50 {scale.percentile(measured, .5):7.2f} ms "
              f"p95 {scale.percentile(measured, .95):7.2f} ms  full scans: {scans}",
              flush=True)  # fmt: skip
    with app.app_context():
        db.close()
    db.obj.close_all()
    return {"engine": engine, "load": load_seconds, "rows": total, "pages": results,
            "seconds": time.perf_counter() - started}  # fmt: skip


def report(runs: list[dict], load_average: float, seconds: float) -> str:
    pct = scale.percentile
    lines = [
        f"Command: `make bench-consultations` (`bench/consultations.py`; "
        f"BENCH_CONSULTATIONS={COUNT}). Machine: {machine()}.",
        f"Data: the demo data plus {COUNT:,} drug questions from the two demo clinics to the demo",
        "hub over three years (93.5% acknowledged, 6% cancelled, 0.5% open, asked in the last",
        "five days: waiting, claimed, information requested, awaiting the check, answered), each",
        "about one of the catalogue's drugs by one of its three names; a guidance line per",
        "answered question.",
        f"Each page requested {scale.REPEATS} times (or for {scale.SECONDS_PER_PAGE:g} s, at "
        "least 10 times) in-process (Flask test client, logged in), after 5 warm-ups.",
        f"Whole run: {seconds:.0f} s; 1-minute load average when it started: {load_average:.1f} "
        f"(now: {os.getloadavg()[0]:.1f}; other engineers' test suites share the 2 cores).",
        "",
        "| Engine | Page | URL | p50 (ms) | p95 (ms) | SELECTs | Full scan in plan |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in runs:
        for label, path, measured, plan, scans in r["pages"]:
            lines.append(
                f"| {r['engine']} | {label} | `{path}` | {pct(measured, 0.5):.2f} | "
                f"{pct(measured, 0.95):.2f} | {len(plan)} | "
                f"{'YES: ' + '; '.join(scans) if scans else 'no'} |"
            )
    lines.append("")
    for r in runs:
        lines.append(f"- {r['engine']}: {r['rows']:,} questions loaded in {r['load']:.0f} s, "
                     f"engine run {r['seconds']:.0f} s.")  # fmt: skip
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
    if "sqlite" in ENGINES:
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run("SQLite", f"sqlite:///{tmp}/consult.db"))
    if "postgresql" in ENGINES:
        admin = psycopg2.connect(PG_SERVER)
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        admin.cursor().execute(f'CREATE DATABASE "{PG_DATABASE}"')
        try:
            runs.append(run("PostgreSQL", f"{PG_SERVER.rsplit('/', 1)[0]}/{PG_DATABASE}"))
        finally:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            admin.close()
    body = report(runs, load_average, time.perf_counter() - started)
    write_section("Drug consultations at scale", body)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
