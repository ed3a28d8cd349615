"""Fixtures: an app per test from the factory, on SQLite or (TEST_DATABASE_URL) PostgreSQL."""

import dataclasses
import datetime as dt
import functools
import html
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections import deque
from urllib.parse import urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg2
import pyotp
import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from clinic import create_app, demo
from clinic.db import connect_database, db, init_schema
from clinic.models import MODELS, User

# Appointments must lie ahead: tests book them on a day that is always still to come.
APPOINTMENT_YEAR = dt.date.today().year + 1
CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')
TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    # Fast hashing in tests only; production uses scrypt.
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
}


class Client(FlaskClient):
    """A test client that sends the CSRF token from the page like htmx does (csrf=False: don't)."""

    _csrf_for: tuple[str | None, str] = (None, "")

    def open(self, *args, csrf: bool = True, **kwargs):
        method = kwargs.get("method", "GET").upper()
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(kwargs.pop("headers", None) or {})
            if "X-CSRFToken" not in headers:
                headers["X-CSRFToken"] = self.csrf_token()
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        """The current session's token, read from a page once per session cookie (a new
        session, as at login, has a new token)."""
        session = self._session_cookie()
        if session is None or self._csrf_for[0] != session:
            page = super().open("/login", follow_redirects=True)
            token = CSRF_IN_PAGE.search(page.get_data(as_text=True)).group(1)
            self._csrf_for = (self._session_cookie(), token)
        return self._csrf_for[1]

    def _session_cookie(self) -> str | None:
        cookie = self.get_cookie(self.application.config["SESSION_COOKIE_NAME"])
        return cookie.value if cookie else None


def pytest_sessionstart(session):
    """Compile the catalogues, so tests always see the committed .po files, never a stale .mo."""
    from pathlib import Path

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (Path(__file__).parent.parent / "translations").glob("*/LC_MESSAGES/messages.po"):
        with po.open("rb") as source:
            catalog = read_po(source)
        # Written aside, then moved in: parallel test workers never read a half-written file.
        partial = po.with_suffix(f".mo.{os.getpid()}")
        with partial.open("wb") as target:
            write_mo(target, catalog)
        partial.replace(po.with_suffix(".mo"))


LINK = re.compile(r'\s(?:href|hx-get)="([^"#]+)"')
NOT_PAGES = ("/static/", "/logout")


def crawl(client, start: str = "/today", limit: int = 220):
    """Yield (url, response) for every same-site page reachable by links and htmx GETs."""
    seen, queue = {start}, deque([start])
    while queue and len(seen) <= limit:
        url = queue.popleft()
        response = client.get(url, follow_redirects=True)
        yield url, response
        if "text/html" not in response.content_type:
            continue
        for found in LINK.findall(response.get_data(as_text=True)):
            target = urljoin(url, html.unescape(found))
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or target in seen or parts.path.startswith(NOT_PAGES):
                continue
            seen.add(target)
            queue.append(target)


@dataclasses.dataclass(frozen=True)
class Seen:
    """What the crawler saw at one URL (kept instead of the response)."""

    url: str
    status_code: int
    content_type: str
    data: bytes

    def text(self) -> str:
        return self.data.decode()


class RoleCrawls:
    """Each demo role's crawl from /today, kept on this worker for the tests that only need to
    know what it reaches (its URLs and pages); a test that asserts on responses makes its own.

    A crawl is kept only with the load of the demo snapshot it ran over, and only when made on a
    database holding that load and the role's own login (nothing else written first): another
    test with the same fixtures, on a copy of the same load, would crawl exactly the same.
    """

    def __init__(self, snapshot: "DemoSnapshot"):
        self.snapshot, self.kept = snapshot, {}

    def crawl(self, client, email: str):
        """crawl(client), keeping what it saw once it has seen everything."""
        load, seen = (self.snapshot.loaded_at, self.snapshot.loaded_on), []
        for url, response in crawl(client):
            seen.append(Seen(url, response.status_code, response.content_type, response.data))
            yield url, response
        self.kept[email] = (load, seen)

    def seen(self, client, email: str) -> list[Seen]:
        """What `email`'s crawl saw over this load of the demo data: crawled now with
        `client` (logged in as `email`, nothing else done yet) unless kept."""
        load, seen = self.kept.get(email, (None, None))
        if load != (self.snapshot.loaded_at, self.snapshot.loaded_on):
            deque(self.crawl(client, email), maxlen=0)
            load, seen = self.kept[email]
        return seen

    def paths(self, email: str) -> set[str] | None:
        """The paths `email`'s crawl reached over a load of today's demo data, or None: loads
        of one day differ in their times only, so in the `v` a poll sends, never in a path."""
        load, seen = self.kept.get(email, (None, None))
        if load is None or load[1] != _hk_today():
            return None
        return {urlsplit(s.url).path for s in seen}


def crawl_group(email: str):
    """The xdist group of `email`'s crawl: the tests that use it run one after the other on one
    worker (`--dist loadgroup`), where it is kept. (No "@" in the name: xdist splits there.)"""
    return pytest.mark.xdist_group(f"crawl-{email.replace('@', '-at-')}")


def for_each_role(emails) -> list:
    """One parameter per role's email, each in its crawl's group."""
    return [pytest.param(email, marks=crawl_group(email)) for email in emails]


def _server_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _connect(url: str) -> None:
    db.initialize(connect_database(url))


def _disconnect() -> None:
    if not db.is_closed():
        db.close()
    db.obj.close_all()  # really closed (not pooled): a copied file holds everything


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A database with the schema, private to this test run."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        template = tmp_path_factory.mktemp("db") / "template.db"
        url = f"sqlite:///{template}"
    else:
        name = f"clinic_test_{uuid.uuid4().hex[:10]}"
        admin = psycopg2.connect(server)
        admin.autocommit = True
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
        url = _server_url(server, name)
    _connect(url)
    init_schema()
    _disconnect()
    yield url
    if server:
        _disconnect()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class DemoSnapshot:
    """The demo data, loaded once and copied into each test's database that asks for it:
    loading takes about a second on PostgreSQL, a copy a few milliseconds.

    Loaded again when a minute old or when the day changed in Hong Kong, so the demo's times
    stay as fresh as a load per test would leave them.
    """

    SCHEMA = "demo_snapshot"
    MAX_AGE = 60.0

    def __init__(self, template_url: str, folder):
        self.template_url, self.folder = template_url, folder
        self.loaded_at, self.loaded_on, self.url = 0.0, None, None

    def stale(self) -> bool:
        return time.monotonic() - self.loaded_at > self.MAX_AGE or self.loaded_on != _hk_today()

    def restore(self, url: str) -> None:
        """Put the demo data into the (test's) database at `url`, loading it again if stale."""
        if self.template_url.startswith("sqlite"):
            if self.stale():
                self._load_sqlite()
            shutil.copy(self.url.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))
        elif self.stale():
            self._load_postgres(url)
        else:
            self._copy_postgres(url)

    def _load(self, url: str) -> None:
        self.loaded_at, self.loaded_on = time.monotonic(), _hk_today()
        with create_app({**TEST_CONFIG, "DATABASE_URL": url}).app_context():
            demo.load()
        _disconnect()

    def _load_sqlite(self) -> None:
        path = self.folder / "demo.db"
        shutil.copy(self.template_url.removeprefix("sqlite:///"), path)
        self.url = f"sqlite:///{path}"
        self._load(self.url)

    def _load_postgres(self, url: str) -> None:
        self._load(url)
        _connect(url)
        db.execute_sql(f'DROP SCHEMA IF EXISTS "{self.SCHEMA}" CASCADE')
        db.execute_sql(f'CREATE SCHEMA "{self.SCHEMA}"')
        for table in _table_names():
            db.execute_sql(f'CREATE TABLE "{self.SCHEMA}"."{table}" AS TABLE "{table}"')
        _disconnect()

    def _copy_postgres(self, url: str) -> None:
        _connect(url)
        with db.atomic():
            db.execute_sql("SET LOCAL session_replication_role = replica")  # no FK order
            # Table and column names come from the models and the catalogue, never from input.
            for model in MODELS:
                # By name: a test that dropped and re-added a column changed the table's order.
                table = model._meta.table_name
                columns = ", ".join(f'"{f.column_name}"' for f in model._meta.sorted_fields)
                source = f'"{self.SCHEMA}"."{table}"'
                db.execute_sql(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM {source}')  # noqa: S608
            _restart_ids()
        _disconnect()


def _empty_postgres(url: str) -> None:
    """Every table emptied, its ids restarting at 1. DELETE, not TRUNCATE: on tables this small
    TRUNCATE's file work cost about 0.4 s a test."""
    _connect(url)
    with db.atomic():
        db.execute_sql("SET LOCAL session_replication_role = replica")  # no FK order, triggers
        for table in _table_names():
            db.execute_sql(f'DELETE FROM "{table}"')  # noqa: S608 (names from the models)
        _restart_ids()
    _disconnect()


def _restart_ids() -> None:
    """Each id sequence continues after the table's highest id (at 1 when it is empty), all in
    one statement."""
    highest = 'SELECT COALESCE(MAX("{column}"), 0) + 1 FROM "{table}"'
    restarts = ", ".join(
        f"setval(pg_get_serial_sequence('\"{table}\"', '{column}'), ("
        + highest.format(table=table, column=column)
        + "), false)"
        for table, column in _serial_columns()
    )
    db.execute_sql(f"SELECT {restarts}")


@functools.cache
def _serial_columns() -> list[tuple[str, str]]:
    """(table, column) of every id sequence; the catalogue is slow to ask, so asked once."""
    return db.execute_sql(SERIAL_COLUMNS).fetchall()


# "%%": psycopg2 formats the text, even with no parameters.
SERIAL_COLUMNS = """SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = 'public' AND column_default LIKE 'nextval%%'"""


def _table_names() -> list[str]:
    return [m._meta.table_name for m in MODELS]


def _hk_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Hong_Kong")).date()


@pytest.fixture(scope="session")
def demo_snapshot(database_url, tmp_path_factory):
    return DemoSnapshot(database_url, tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def role_crawls(demo_snapshot):
    return RoleCrawls(demo_snapshot)


@pytest.fixture
def app(request, database_url, demo_snapshot, tmp_path):
    """An app on an empty database, or on the demo data when the test asks for `demo_data`."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'clinic.db'}"
        shutil.copy(database_url.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))
    else:
        url = database_url
        _empty_postgres(url)
    if "demo_data" in request.fixturenames:
        demo_snapshot.restore(url)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    app.test_client_class = Client
    # No app context held open here: requests must each get their own `g`, as in production.
    yield app
    _disconnect()


@pytest.fixture
def not_testing(app):
    """The app as in production: what is kept once (statements, the navigation, date patterns)
    is not done again under TESTING to check it."""
    app.testing = False
    yield app
    app.testing = True


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def demo_data(app):
    """The demo alliance (put into the database by `app`, from the snapshot)."""
    return demo


SECRET_IN_PAGE = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')


def totp_code(email: str) -> str:
    """A code of this user's second factor not used yet (a used one is refused as a replay).

    The current time step, or the next when this one is used; after that, the one after.
    """
    person = User.get(User.email == email.strip().lower())
    totp = pyotp.TOTP(person.totp_secret)
    now = totp.timecode(dt.datetime.now(dt.UTC))
    step = max(now, (person.totp_last_step or 0) + 1)
    if step > now + 1:  # a third login of one user within 30 seconds: wait for the next step
        time.sleep(totp.interval - time.time() % totp.interval + 0.1)
        return totp_code(email)
    return totp.generate_otp(step)


def second_step(client: Client, response, email: str):
    """Complete two-step sign-in when the login asks for it (enrolling if not yet set up)."""
    location = response.headers.get("Location", "")
    if location.endswith("/login/enrol"):
        page = client.get(location).get_data(as_text=True)
        code = pyotp.TOTP(SECRET_IN_PAGE.search(page).group(1)).now()
        assert client.post(location, data={"code": code}).status_code == 200
        return client.get("/today")
    if location.endswith("/login/code"):
        return client.post(location, data={"code": totp_code(email)})
    return response


def log_in(client: Client, email: str, password: str = demo.DEMO_PASSWORD):
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    second_step(client, response, email)
    return client


@pytest.fixture
def login(app, demo_data):
    """login("doctor@jinzhou.demo") → a client logged in as that demo account."""

    def make(email: str):
        return log_in(app.test_client(), email)

    return make


@pytest.fixture
def doctor(login):
    return login("doctor@jinzhou.demo")


@pytest.fixture
def nurse(login):
    return login("nurse@jinzhou.demo")


@pytest.fixture
def other_clinic_doctor(login):
    return login("doctor@huangge.demo")


@pytest.fixture
def coordinator(login):
    return login("coordinator@hub.demo")


@pytest.fixture
def specialist(login):
    return login("specialist@hub.demo")


@pytest.fixture
def pharmacist(login):
    return login("pharmacist@hub.demo")


@pytest.fixture
def admin(login):
    return login("admin@hub.demo")


def user(email: str) -> User:
    return User.get(User.email == email)


def past_access_window(app, extra_days: int = 1):
    """The clock moved past HUB_ACCESS_DAYS_AFTER_CLOSE (a context manager): every `utcnow()`
    in the app, and so every stored time it compares, is that much later; rows are not edited."""
    import datetime as dt

    import time_machine

    days = app.config["HUB_ACCESS_DAYS_AFTER_CLOSE"] + extra_days
    return time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=days), tick=True)


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a free local port, in a thread, for the browser tests."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def make_patient(app):
    """make_patient(clinic_name=..., documents=[("hkid", "A1234563")], **fields) → Patient."""

    from clinic.models import IdentityDocument, Organisation, Patient

    def make(clinic_name: str = demo.CLINIC_A, documents=(), **fields):
        clinic = Organisation.by_name(clinic_name)
        values = {
            "chinese_name": "陳大文",
            "english_name": "CHAN, Tai Man",
            "sex": "M",
            "date_of_birth": dt.date(1960, 5, 17),
            "residency": "hk",
            "phone": "+85291234567",
        }
        patient = Patient.create(clinic=clinic, **(values | fields))
        for kind, number in documents:
            IdentityDocument.create(
                patient=patient, clinic=clinic, kind=kind, number=number, identity_key=number
            )
        return patient

    return make


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`: nothing downloads)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, live_server):
    """new_page(email=None, locale="en-GB") → a page in a fresh context, logged in if asked."""
    contexts = []

    def make(email: str | None = None, locale: str = "en-GB"):
        context = browser.new_context(base_url=live_server, locale=locale)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if email:
            page.goto("/login")
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(demo.DEMO_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(re.compile(r"/(today|login/code)$"))
            if page.url.endswith("/login/code"):
                page.get_by_label("Code").fill(totp_code(email))
                page.get_by_role("button", name="Continue").click()
                page.wait_for_url("**/today")
        return page

    yield make
    for context in contexts:
        context.close()


class StatementCounter(logging.Handler):
    """Counts the SQL statements peewee runs (transaction control, BEGIN, is not counted)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record):
        if isinstance(record.msg, tuple) and not record.msg[0].startswith("BEGIN"):
            self.statements.append(record.msg[0])


@pytest.fixture
def count_statements():
    """with count_statements() as seen: … ; len(seen.statements) is what ran meanwhile."""
    import contextlib

    @contextlib.contextmanager
    def counting():
        counter = StatementCounter()
        logger = logging.getLogger("peewee")
        level = logger.level
        logger.addHandler(counter)
        logger.setLevel(logging.DEBUG)
        try:
            yield counter
        finally:
            logger.removeHandler(counter)
            logger.setLevel(level)

    return counting


@pytest.fixture
def make_service_day(app, demo_data):
    """make_service_day(capacity=3, state="published", **fields) → a Jinzhou day tomorrow."""
    import datetime as dt

    from clinic.models import Place, ServiceDay

    def make(capacity: int = 3, state: str = "published", **fields):
        doctor = user("doctor@jinzhou.demo")
        place, _ = Place.get_or_create(
            clinic=doctor.organisation_id, name="Test centre", defaults={"address": "1 Test Rd"}
        )
        values = {
            "date": dt.date.today() + dt.timedelta(days=7),
            "starts": dt.time(9),
            "ends": dt.time(10),
            "theme": "chronic",
            "slot_minutes": 30,
        }
        (day,) = ServiceDay.plan(doctor, place=place, capacity=capacity, **(values | fields))
        if state == "published":
            day.publish(doctor)
        return day

    return make
