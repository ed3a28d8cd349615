"""16 simulated users for 60 s against gunicorn on loopback: throughput, p50/p95/p99, errors.

Run by `make bench-load`. For each engine it builds a throw-away database (`flask init-db`,
`flask demo`, then 2,000 submitted referrals for the coordinators to accept), starts gunicorn
on a free local port and runs BENCH_USERS (16) users in a closed loop (each sends its next
request as soon as the last one is answered: no think time, the hardest case) for
BENCH_SECONDS (60) s, and again with think time (BENCH_THINK, "0,1": a pause of about that
many seconds after each action, a fifth of it between keystrokes, as people work):

- reception (6 users, a clinic nurse): types a name (4 search fragments), opens a patient,
  checks them in, polls the queue and the badge;
- doctors (5 users): Today, the outbox, a patient page, the badge poll;
- hub coordinators (5 users): the inbox, a submitted referral's page, accepts it, the poll.

Users of one role share one login (the login rate limit counts per address: 10 a minute).
SQLite: 1 worker × 8 threads (the only safe SQLite deployment). PostgreSQL: 4 workers × 4
threads, login limits in Redis (REDIS_URL, default redis://127.0.0.1:6379/0), database
`clinic_load` on BENCH_PG_URL's server, created and dropped. An error is a status other than
the expected one, or a failed connection.
"""

import http.client
import os
import random
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg2
from pages import BIN, ROOT, free_port, log_in, serve
from report import machine, write_section
from search import PG_SERVER

USERS = int(os.environ.get("BENCH_USERS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
ENGINES = os.environ.get("BENCH_ENGINES", "sqlite,postgresql").split(",")
THINK = [float(s) for s in os.environ.get("BENCH_THINK", "0,1").split(",")]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PG_DATABASE = "clinic_load"
SUBMITTED = 2000
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')
NAV_POLL = re.compile(r'id="nav-counts"[^>]*hx-get="([^"]+)"')
QUEUE_POLL = re.compile(r'hx-get="(/patients/queue\?v=[^"]+)"')
HX = {"HX-Request": "true"}
POLL = {"HX-Request": "true", "X-Clinic-Poll": "1"}
SEED = """
from clinic import create_app
from clinic.models import Organisation, Patient, Referral, User
from clinic.demo import CLINIC_A, HUB_NAME
app = create_app()
with app.app_context():
    doctor = User.get(User.email == "doctor@jinzhou.demo")
    hub = Organisation.by_name(HUB_NAME)
    patients = list(Patient.select().where(Patient.clinic == Organisation.by_name(CLINIC_A)))
    referrals = []
    for n in range({count}):
        referral = Referral.create_draft(
            doctor, patients[n % len(patients)], to_org=hub, service=hub.services.first(),
            priority="urgent", reason="Load test")
        referral.submit(doctor)
        referrals.append(referral.id)
    print(" ".join(str(p.id) for p in patients))
    print(" ".join(str(r) for r in referrals))
"""


class User:
    """One simulated user: a keep-alive connection, the role's session, what it measured."""

    def __init__(
        self, port: int, cookie: str, token: str, patients: list[int], work: list, think: float
    ):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.think, self.pauses = think, random.Random(0)  # reseeded per user by drive()
        self.headers = {"Cookie": cookie, "Accept-Encoding": "gzip, br"}
        self.token, self.patients, self.work = token, patients, work
        self.samples: list[tuple[str, float, bool]] = []
        self.nav_poll = self.queue_poll = None

    def send(self, kind: str, method: str, path: str, expect: tuple, headers=None, body=None):
        headers = {**self.headers, **(headers or {})}
        if body is not None:
            headers.update({"Content-Type": "application/x-www-form-urlencoded",
                            "X-CSRFToken": self.token})  # fmt: skip
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            response.read()
            ok = response.status in expect
        except (OSError, http.client.HTTPException):
            self.conn.close()
            ok = False
        self.samples.append((kind, (time.perf_counter() - started) * 1000, ok))
        if self.think:  # the person reads the answer, or types the next letter
            typing = kind == "search as you type"
            time.sleep(self.think * self.pauses.uniform(0.5, 1.5) / (5 if typing else 1))

    def page(self, kind: str, path: str, headers=None) -> None:
        self.send(kind, "GET", path, (200,), headers)

    def poll(self) -> None:
        if self.nav_poll:
            self.send("poll (badge)", "GET", self.nav_poll, (200, 204), POLL)

    def reception(self, rng: random.Random) -> None:
        for typed in ("c", "ch", "cha", "chan"):  # POSTed, as the page does (no HKID in URLs)
            body = urlencode({"q": typed})
            self.send("search as you type", "POST", "/patients/", (200,), HX, body)
        patient = rng.choice(self.patients)
        self.page("patient page", f"/patients/{patient}")
        self.send("check-in", "POST", f"/patients/{patient}/check-in", (303,), body="")
        if self.queue_poll:
            self.send("poll (queue)", "GET", self.queue_poll, (200, 204), POLL)
        self.poll()

    def doctor(self, rng: random.Random) -> None:
        self.page("Today", "/today")
        self.page("outbox", "/referrals/")
        self.page("patient page", f"/patients/{rng.choice(self.patients)}")
        self.poll()

    def coordinator(self, rng: random.Random) -> None:
        self.page("inbox", "/referrals/")
        referral = self.work.pop() if self.work else None
        if referral:
            self.page("referral page", f"/referrals/{referral}")
            form = {"appointment_at": "2026-12-20T10:30", "appointment_place": "Clinic 3"}
            self.send(
                "accept", "POST", f"/referrals/{referral}/accept", (303,), body=urlencode(form)
            )
        self.poll()


def discover_polls(user: User) -> None:
    """The poll URLs (with their versions) the pages carry, as a browser would see them."""
    conn = http.client.HTTPConnection("127.0.0.1", user.conn.port)
    for path, pattern, attribute in (("/today", NAV_POLL, "nav_poll"),
                                     ("/patients/queue", QUEUE_POLL, "queue_poll")):  # fmt: skip
        conn.request("GET", path, headers={"Cookie": user.headers["Cookie"]})
        response = conn.getresponse()
        found = pattern.search(response.read().decode())
        if found:
            setattr(user, attribute, found.group(1).replace("&amp;", "&"))
    conn.close()


def session(port: int, email: str) -> tuple[str, str]:
    cookie = log_in(port, email)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/today", headers={"Cookie": cookie})
    response = conn.getresponse()
    token = CSRF.search(response.read().decode()).group(1)
    # The token's secret is kept in the session: the cookie that carries it from now on.
    renewed = response.getheader("Set-Cookie")
    return (renewed.split(";")[0] if renewed else cookie), token


def run(engine: str, env: dict, settings: str, think: float) -> dict:
    flask = [str(BIN / "flask"), "--app", "clinic"]
    subprocess.run([*flask, "init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*flask, "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    seeded = subprocess.run([str(BIN / "python"), "-c", SEED.format(count=SUBMITTED)], cwd=ROOT,
                            env=env, check=True, capture_output=True, text=True)  # fmt: skip
    patients, referrals = ([int(n) for n in line.split()] for line in seeded.stdout.splitlines())
    port = free_port()
    server = serve("wsgi:app", port, env, settings)
    try:
        roles = [("reception", "nurse@jinzhou.demo", 6), ("doctor", "doctor@jinzhou.demo", 5),
                 ("coordinator", "coordinator@hub.demo", USERS - 11)]  # fmt: skip
        work = referrals  # submitted referrals, each accepted by one coordinator
        users = []
        for role, email, count in roles:
            cookie, token = session(port, email)
            for _ in range(count):
                user = User(port, cookie, token, patients, work, think)
                discover_polls(user)
                users.append((role, user))
        load_average = os.getloadavg()[0]
        stop = time.monotonic() + SECONDS

        def drive(index: int, role: str, user: User) -> None:
            rng = user.pauses = random.Random(index)
            while time.monotonic() < stop:
                getattr(user, role)(rng)

        threads = [threading.Thread(target=drive, args=(i, role, user))
                   for i, (role, user) in enumerate(users)]  # fmt: skip
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    samples = [s for _role, user in users for s in user.samples]
    result = {"engine": engine, "settings": settings, "seconds": elapsed, "samples": samples,
              "load": load_average, "load_after": os.getloadavg()[0], "think": think}  # fmt: skip
    print(summary_line(result), flush=True)
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def figures(samples) -> str:
    times = [t for _k, t, _ok in samples]
    errors = sum(1 for _k, _t, ok in samples if not ok)
    return (f"{len(samples):,} | {percentile(times, .5):.0f} | {percentile(times, .95):.0f} | "
            f"{percentile(times, .99):.0f} | {errors}")  # fmt: skip


def label(r: dict) -> str:
    return f"{r['engine']}, think {r['think']:g} s"


def summary_line(r: dict) -> str:
    return f"{label(r)}: {len(r['samples']) / r['seconds']:.0f} req/s | " + figures(r["samples"])


def report(results: list[dict]) -> str:
    lines = [
        f"Command: `make bench-load` (`bench/load.py`). Machine: {machine()}.",
        f"{USERS} simulated users for {SECONDS:g} s on loopback, in a closed loop (think 0 s: each",
        "user sends its next request as soon as the last is answered, the hardest case) and with",
        "think time (a pause of 0.5-1.5 times that after each answer, a fifth of it between",
        "keystrokes), each on a fresh database;",
        "client and server on the same 2 cores; demo data plus 2,000 submitted referrals. Mix per",
        "round: reception (6 users) types a name (4 search fragments), opens a patient, checks",
        "them in, polls queue and badge; doctors (5) Today, outbox, patient page, badge poll;",
        "coordinators (5) inbox, a referral's page, accept, badge poll. PostgreSQL: REDIS_URL set",
        "(login limits shared by the workers).",
        "",
        "| Engine | gunicorn | Think (s) | Load avg (1 min) before / after | Requests/s | "
        "Requests | p50 (ms) | p95 (ms) | p99 (ms) | Errors |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['engine']} | {r['settings']} | {r['think']:g} | "
            f"{r['load']:.1f} / {r['load_after']:.1f} | "
            f"{len(r['samples']) / r['seconds']:.0f} | {figures(r['samples'])} |"
        )
    lines += ["", "By kind of request (times in ms):", ""]
    kinds = sorted({k for r in results for k, _t, _ok in r["samples"]})
    columns = ("requests", "p50", "p95", "p99", "errors")
    lines.append("| Request | " + " | ".join(f"{label(r)}: {c}" if c == "requests" else c
                                           for r in results for c in columns) + " |")  # fmt: skip
    lines.append("|---|" + "---:|" * len(columns) * len(results))
    for kind in kinds:
        cells = [figures([s for s in r["samples"] if s[0] == kind]) for r in results]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def postgres(database: str, create: bool) -> str:
    admin = psycopg2.connect(PG_SERVER)
    admin.autocommit = True
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    if create:
        admin.cursor().execute(f"CREATE DATABASE \"{database}\" TEMPLATE template0 ENCODING 'UTF8'")
    admin.close()
    return urlunsplit(urlsplit(PG_SERVER)._replace(path=f"/{database}"))


def main() -> None:
    results = []
    base = {**os.environ, "SECRET_KEY": "bench", "PYTHONPATH": str(ROOT / "bench")}
    sqlite = "--workers 1 --threads 8 --worker-class gthread --log-level warning"
    postgresql = "--workers 4 --threads 4 --worker-class gthread --log-level warning"
    with tempfile.TemporaryDirectory() as tmp:
        for think in THINK:
            if "sqlite" in ENGINES:
                env = {**base, "DATABASE_URL": f"sqlite:///{Path(tmp) / f'load-{think}.db'}"}
                results.append(run("SQLite", env, sqlite, think))
            if "postgresql" in ENGINES:
                env = {**base, "DATABASE_URL": postgres(PG_DATABASE, True), "REDIS_URL": REDIS_URL}
                try:
                    results.append(run("PostgreSQL", env, postgresql, think))
                finally:
                    postgres(PG_DATABASE, False)
    write_section("Under load", report(results))


if __name__ == "__main__":
    main()
