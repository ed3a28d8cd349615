"""The app with the demo data, driven in-process through Flask's test client.

Shared by the benchmarks: `bench/pages.py` (median server time per page), `bench/profile.py`
(where that time goes) and `bench/scale.py` (the same pages over a large register).
"""

import os
import re
import statistics
import sys
import time
from pathlib import Path

import pyotp
from flask import Flask
from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clinic import create_app, demo
from clinic.db import init_schema
from clinic.models import Patient, User

CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
# The navigation's badge poll (before issue 8 it was the referral badge alone).
NAV_POLL = re.compile(r'id="(?:nav-counts|referral-badge)"[^>]*hx-get="([^"]+)"')
HX = {"HX-Request": "true"}
POLL = {"HX-Request": "true", "X-Clinic-Poll": "1"}
REQUESTS = int(os.environ.get("BENCH_INPROCESS_REQUESTS", "150"))


def demo_app(database_url: str, load_demo: bool = True) -> Flask:
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        init_schema()
        if load_demo:
            demo.load()
    return app


def logged_in(app: Flask, email: str) -> FlaskClient:
    """A test client logged in through the login form, as a browser would, with the second
    step when the account has one (hub staff: the demo's shared key)."""
    client = app.test_client()
    token = CSRF_TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post(
        "/login", data={"email": email, "password": demo.DEMO_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.status_code
    if response.headers["Location"].endswith("/login/code"):
        token = CSRF_TOKEN.search(client.get("/login/code").get_data(as_text=True)).group(1)
        code = pyotp.TOTP(demo.DEMO_TOTP_SECRET).now()
        response = client.post("/login/code", data={"code": code, "csrf_token": token})
        assert response.status_code == 303, response.status_code
    return client


def nav_poll_url(client: FlaskClient) -> str:
    """The badge poll of the current page, with the version the page was rendered at."""
    page = client.get("/today").get_data(as_text=True)
    return NAV_POLL.search(page).group(1).replace("&amp;", "&")


def a_patient_id(app: Flask, email: str) -> int:
    """The first patient of the user's clinic."""
    with app.app_context():
        clinic = User.get(User.email == email).organisation_id
        return Patient.select(Patient.id).where(Patient.clinic == clinic).order_by(Patient.id)[0].id


def pages(app: Flask) -> list[tuple[str, FlaskClient, str, dict, int]]:
    """(label, client, path, headers, expected status) of the benchmarked pages."""
    anonymous = app.test_client()
    nurse = logged_in(app, "nurse@jinzhou.demo")
    doctor = logged_in(app, "doctor@jinzhou.demo")
    hub = logged_in(app, "coordinator@hub.demo")
    patient = a_patient_id(app, "nurse@jinzhou.demo")
    return [
        ("Login page", anonymous, "/login", {}, 200),
        ("Today, logged in as a clinic nurse", nurse, "/today", {}, 200),
        ("Patient search as you type (fragment)", nurse, "/patients/?q=chan", HX, 200),
        ("Referral inbox of the hub coordinator", hub, "/referrals/", {}, 200),
        ("Patient page (clinic nurse)", nurse, f"/patients/{patient}", {}, 200),
        ("Badge poll, nothing changed (204)", doctor, nav_poll_url(doctor), POLL, 204),
    ]


def main() -> None:
    """Print {label: [path, median wall ms, median CPU ms]} as JSON for this tree's app (pages.py
    runs it once per tree, so an older commit is measured by its own code)."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = demo_app(f"sqlite:///{tmp}/inprocess.db")
        medians = {label: [path, *median_ms(client, path, headers, status)]
                   for label, client, path, headers, status in pages(app)}  # fmt: skip
    print(json.dumps(medians))


def median_ms(
    client: FlaskClient, path: str, headers: dict, status: int, n: int = REQUESTS
) -> tuple[float, float]:
    """Median wall-clock and CPU (this process's) time of `n` requests, in ms, after a warm-up
    (templates compiled, pool open). The CPU time is what the page costs: it is not inflated
    when other work on the machine takes the cores, as wall-clock time is."""
    wall, cpu = [], []
    for index in range(n + 20):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, headers={**headers, "Accept-Encoding": "gzip"})
        elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        assert response.status_code == status, (path, response.status_code)
        if index >= 20:
            wall.append(elapsed * 1000)
            cpu.append(elapsed_cpu * 1000)
    return statistics.median(wall), statistics.median(cpu)


if __name__ == "__main__":
    main()
