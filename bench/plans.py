"""The worklist statements' PostgreSQL plans over a kept large register (a working tool).

`python bench/plans.py load` builds database BENCH_PLAN_DB (default clinic_plan) on BENCH_PG_URL
with `bench/scale.py`'s loaders (BENCH_PATIENTS, BENCH_REFERRALS) and keeps it; then
`python bench/plans.py [PAGE …]` requests each worklist page through the test client, prints
the p50 of a few requests and EXPLAIN (ANALYZE, BUFFERS) of its list statements.
"""

import os
import random
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import scale
import search
from inprocess import Page, demo_app, logged_in

from clinic import demo
from clinic.db import db
from clinic.models import Organisation, Referral, User
from clinic.models.referrals import SUBMITTED

NAME = os.environ.get("BENCH_PLAN_DB", "clinic_plan")
URL = urlunsplit(urlsplit(search.PG_SERVER)._replace(path=f"/{NAME}"))
PAGES = {
    "inbox": ("coordinator@hub.demo", "/referrals/"),
    "needs": ("coordinator@hub.demo", "/referrals/?needs=1"),
    "outbox": (scale.DOCTOR, "/referrals/?state=closed&priority=urgent"),
    "outbox-all": (scale.DOCTOR, "/referrals/"),
    "today-hub": ("coordinator@hub.demo", "/today"),
    "today-doctor": (scale.DOCTOR, "/today"),
}


def load() -> None:
    search.PG_DATABASE = NAME
    search.postgres_url()
    app = demo_app(URL)
    rng = random.Random(scale.PATIENTS)
    search.PER_CLINIC = min(scale.PATIENTS, 100_000)
    with app.app_context():
        hub = Organisation.by_name(demo.HUB_NAME)
        clinics = []
        for n in range(max(1, scale.PATIENTS // search.PER_CLINIC)):
            clinic = Organisation.create(name=f"Bench clinic {n}", kind="clinic")
            clinic.link_hub(hub)
            clinics.append(clinic.id)
        for email, role in ((scale.DOCTOR, "doctor"), (scale.NURSE, "nurse")):
            User.create_with_password(demo.DEMO_PASSWORD, email=email, name=email, role=role,
                                      organisation=clinics[0])  # fmt: skip
        search.load(clinics, rng)
        scale.load_referrals(clinics, hub, rng)
        submitted = Referral.select().where(Referral.state == SUBMITTED).count()
        print(Referral.select().count(), "referrals,", submitted, "submitted")


def explain(app, page: Page) -> None:
    selects = scale.selects_of(page)
    with app.app_context():
        for sql, params in selects:
            rows = db.execute_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).fetchall()
            text = [row[0] for row in rows]
            print(f"--- {len(sql)} chars: {sql[:160]}")
            if os.environ.get("SQL"):
                print(db.cursor().mogrify(sql, params).decode())
            if os.environ.get("FULL"):
                print("\n".join(text))
            else:
                steps = [t for t in text if "Limit" in t or "Sort" in t or "Scan" in t]
                print("\n".join(steps)[:4000])
                print("\n".join(t for t in text if t.startswith(("Planning Time", "Execution"))))


def login(app, email: str):
    """Logged in; a second run within the same 30 s waits for the next one-time code."""
    try:
        return logged_in(app, email)
    except AssertionError:
        time.sleep(31)
        return logged_in(app, email)


def main(args: list[str]) -> None:
    if args[:1] == ["load"]:
        load()
        return
    app = demo_app(URL, load_demo=False)
    with app.app_context():  # the patient page of a referred patient of the doctor's clinic
        doctor = User.get(User.email == scale.DOCTOR)
        sent = Referral.select().where(Referral.from_org == doctor.organisation_id)
        patient = sent.where(Referral.state == SUBMITTED).first().patient_id
    PAGES["patient"] = (scale.DOCTOR, f"/patients/{patient}")
    for name in args or list(PAGES):
        email, path = PAGES[name]
        page = Page(name, login(app, email), path, {}, 200)
        measured = scale.timings(page) if not os.environ.get("NOTIME") else [0]
        print(f"=== {name} {path}: p50 {scale.percentile(measured, .5):.1f} ms "
              f"p95 {scale.percentile(measured, .95):.1f} ms ({len(measured)})")  # fmt: skip
        explain(app, page)


if __name__ == "__main__":
    main(sys.argv[1:])
