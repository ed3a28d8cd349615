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
from typing import NamedTuple
from urllib.parse import urlencode

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
# The patients page's search form: it POSTs what is typed, with the page's CSRF token (before,
# it searched by GET ?q=, and the older tree measured beside this one still does).
SEARCH_FORM = re.compile(r'<form class="search" method="(get|post)" action="([^"]+)"')
PAGE_CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
TYPED, FOUND = "chan", "CHAN, Tai Man"  # a demo patient of the Jinzhou clinic
# The headers htmx sends for the search box (hx-post on #q, hx-target #search-results).
SEARCH_HX = {"HX-Request": "true", "HX-Trigger": "q", "HX-Target": "search-results"}
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
    """A test client logged in through the login form, as a browser would, and through the
    second step where the account has one (the demo's shared key)."""
    client = app.test_client()
    login = {"email": email, "password": demo.DEMO_PASSWORD}
    response = _post_form(client, "/login", login)
    if response.headers["Location"].endswith("/login/code"):
        code = pyotp.TOTP(demo.DEMO_TOTP_SECRET).now()
        response = _post_form(client, "/login/code", {"code": code})
    return client


def _post_form(client: FlaskClient, path: str, form: dict):
    token = CSRF_TOKEN.search(client.get(path).get_data(as_text=True)).group(1)
    response = client.post(path, data={**form, "csrf_token": token})
    assert response.status_code == 303, (path, response.status_code)
    return response


def nav_poll_url(client: FlaskClient) -> str:
    """The badge poll of the current page, with the version the page was rendered at."""
    page = client.get("/today").get_data(as_text=True)
    return NAV_POLL.search(page).group(1).replace("&amp;", "&")


def a_patient_id(app: Flask, email: str) -> int:
    """The first patient of the user's clinic."""
    with app.app_context():
        clinic = User.get(User.email == email).organisation_id
        return Patient.select(Patient.id).where(Patient.clinic == clinic).order_by(Patient.id)[0].id


def search_as_the_page_does(page: str, typed: str = TYPED) -> tuple[str, dict | None]:
    """The search as you type of the patients page `page`, as its form sends it: (path, the
    form to POST with the page's CSRF token), or (path?q=, None) where the form searches by GET."""
    form = SEARCH_FORM.search(page)
    method, action = form.groups()
    if method == "get":
        return f"{action}?{urlencode({'q': typed})}", None
    return action, {"q": typed, "csrf_token": PAGE_CSRF_TOKEN.search(page, form.end()).group(1)}


class Page(NamedTuple):
    """A benchmarked request: GET `path`, or POST `form` to it when there is one."""

    label: str
    client: FlaskClient
    path: str
    headers: dict
    status: int
    form: dict | None = None

    def request(self, headers: dict | None = None):
        method = "POST" if self.form else "GET"
        headers = {**self.headers, **(headers or {})}
        return self.client.open(self.path, method=method, data=self.form, headers=headers)


def searched(nurse: FlaskClient) -> Page:
    """The search as you type, checked once to answer result rows (not the empty search)."""
    path, form = search_as_the_page_does(nurse.get("/patients/").get_data(as_text=True))
    page = Page("Patient search as you type (fragment)", nurse, path, SEARCH_HX, 200, form)
    answer = page.request().get_data(as_text=True)
    assert FOUND in answer and "<tbody>" in answer, (path, "answered no result rows")
    return page


def pages(app: Flask) -> list[Page]:
    """The benchmarked pages."""
    anonymous = app.test_client()
    nurse = logged_in(app, "nurse@jinzhou.demo")
    doctor = logged_in(app, "doctor@jinzhou.demo")
    hub = logged_in(app, "coordinator@hub.demo")
    patient = a_patient_id(app, "nurse@jinzhou.demo")
    return [
        Page("Login page", anonymous, "/login", {}, 200),
        Page("Today, logged in as a clinic nurse", nurse, "/today", {}, 200),
        searched(nurse),
        Page("Referral inbox of the hub coordinator", hub, "/referrals/", {}, 200),
        Page("Patient page (clinic nurse)", nurse, f"/patients/{patient}", {}, 200),
        Page("Badge poll, nothing changed (204)", doctor, nav_poll_url(doctor), POLL, 204),
    ]


def main() -> None:
    """Print {label: [path, median wall ms, median CPU ms]} as JSON for this tree's app (pages.py
    runs it once per tree, so an older commit is measured by its own code)."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = demo_app(f"sqlite:///{tmp}/inprocess.db")
        medians = {page.label: [page.path, *median_ms(page)] for page in pages(app)}
    print(json.dumps(medians))


def median_ms(page: Page, n: int = REQUESTS) -> tuple[float, float]:
    """Median wall-clock and CPU (this process's) time of `n` requests, in ms, after a warm-up
    (templates compiled, pool open). The CPU time is what the page costs: it is not inflated
    when other work on the machine takes the cores, as wall-clock time is."""
    wall, cpu = [], []
    for index in range(n + 20):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = page.request({"Accept-Encoding": "gzip"})
        elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        assert response.status_code == page.status, (page.path, response.status_code)
        if index >= 20:
            wall.append(elapsed * 1000)
            cpu.append(elapsed_cpu * 1000)
    return statistics.median(wall), statistics.median(cpu)


if __name__ == "__main__":
    main()
