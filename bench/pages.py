"""Requests per second of key pages against a bare Flask hello-world, all under gunicorn, and
each page's in-process median server time; the code before issue 8 measured beside this one.

Run by `make bench`. Starts gunicorn servers on local ports (one worker, 8 threads: the SQLite
deployment) for hello-world, this tree's app and the app at BENCH_BEFORE (extracted with git
archive into a temp directory), each with the demo data in a throw-away SQLite database;
drives each URL with keep-alive HTTP clients for a fixed time, and writes docs/benchmarks.md.
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pyotp
from inprocess import FOUND, REQUESTS, SEARCH_HX, search_as_the_page_does
from report import machine, write_section

from clinic.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET  # importable once inprocess set the path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = 4
# The code measured beside this tree's: the commit before issue 8's work (BENCH_BEFORE= skips).
BEFORE = os.environ.get("BENCH_BEFORE", "bbc1224")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SETTINGS = "--workers 1 --threads 8 --worker-class gthread --log-level warning"


def serve(
    app: str, port: int, env: dict, settings: str = SETTINGS, cwd: Path = ROOT, bin: Path = BIN
) -> subprocess.Popen:
    # Settings given here in full (not gunicorn.conf.py), identical for both servers; no access log.
    command = [str(bin / "gunicorn"), "--config", "/dev/null", *settings.split()]
    command += ["--bind", f"127.0.0.1:{port}", app]
    server = subprocess.Popen(command, cwd=cwd, env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"{app} did not start")


CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def log_in(port: int, email: str) -> str:
    """Log in over HTTP like a browser, with the second step where the account has one (the
    demo's shared key); returns the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    cookie, token = _form_page(conn, "/login", None)
    form = {"email": email, "password": DEMO_PASSWORD, "csrf_token": token}
    response = _post(conn, "/login", form, cookie)
    cookie = response.getheader("Set-Cookie").split(";")[0]
    if response.getheader("Location", "").endswith("/login/code"):
        renewed, token = _form_page(conn, "/login/code", cookie)
        cookie = renewed or cookie
        code = pyotp.TOTP(DEMO_TOTP_SECRET).now()
        response = _post(conn, "/login/code", {"code": code, "csrf_token": token}, cookie)
        cookie = response.getheader("Set-Cookie").split(";")[0]
    return cookie


def _form_page(conn, path: str, cookie: str | None) -> tuple[str | None, str]:
    """GET a form: (the session cookie it sets, if any; its CSRF token)."""
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    set_cookie = response.getheader("Set-Cookie")
    token = CSRF_FIELD.search(response.read().decode()).group(1)
    return (set_cookie.split(";")[0] if set_cookie else None), token


def _post(conn, path: str, form: dict, cookie: str):
    response = _send(conn, path, {"Cookie": cookie}, form)
    response.read()
    assert response.status == 303, (path, response.status)
    return response


def _send(conn, path: str, headers: dict, form: dict | None = None):
    """GET `path`, or POST `form` to it as a browser sends a form."""
    if form is None:
        conn.request("GET", path, headers=headers)
    else:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", path, urlencode(form), headers)
    return conn.getresponse()


def requests_per_second(
    port: int, path: str, headers: dict, status: int, form: dict | None = None
) -> tuple[float, int]:
    counts, stop = [0] * CLIENTS, time.monotonic() + SECONDS
    sizes = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < stop:
            response = _send(conn, path, headers, form)
            body = response.read()
            assert response.status == status, (path, response.status)
            counts[index] += 1
            if not sizes:
                sizes.append(len(body))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / SECONDS, sizes[0]


def source_tree(revision: str, workdir: Path) -> Path:
    """The app as it was at `revision` (git archive), with its catalogues compiled."""
    tree = workdir / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "bench" / "inprocess.py").write_text((ROOT / "bench" / "inprocess.py").read_text())
    subprocess.run([str(BIN / "pybabel"), "compile", "-d", "translations", "-D", "messages"],
                   cwd=tree, check=True, capture_output=True)  # fmt: skip
    return tree


def own_environment(tree: Path, workdir: Path) -> Path:
    """The bin folder of a virtualenv with `tree`'s own dependencies (the code before may need
    packages this tree no longer has), from the package index like `make install`."""
    venv = workdir / f"venv-{tree.name}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet"]
    subprocess.run([*pip, str(tree), "pyotp"], check=True)  # pyotp: bench/inprocess.py logs in
    return venv / "bin"


def start(
    tree: Path, workdir: Path, name: str, bin: Path = BIN
) -> tuple[subprocess.Popen, int, dict]:
    """A demo database and a gunicorn server running `tree`'s code; its in-process medians."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / name}.db", "SECRET_KEY": "bench",
           "PYTHONPATH": f"{tree}:{ROOT / 'bench'}"}  # fmt: skip
    flask = [str(bin / "flask"), "--app", "clinic"]
    subprocess.run([*flask, "init-db"], cwd=tree, env=env, check=True, capture_output=True)
    subprocess.run([*flask, "demo"], cwd=tree, env=env, check=True, capture_output=True)
    medians = subprocess.run([str(bin / "python"), "bench/inprocess.py"], cwd=tree, env=env,
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    port = free_port()
    return (
        serve("wsgi:app", port, {**env, "PYTHONPATH": str(tree)}, cwd=tree, bin=bin),
        port,
        json.loads(medians.splitlines()[-1]),
    )


def searched(port: int, nurse: dict) -> tuple[dict, int, dict | None]:
    """The search as you type, sent as the tree's own patients page sends it (POSTed with the
    page's CSRF token, or GET ?q= on the older tree), checked once to answer result rows."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    response = _send(conn, "/patients/", {"Cookie": nurse["Cookie"]})
    page = response.read().decode()
    renewed = response.getheader("Set-Cookie")  # the session that holds the token's secret
    cookie = renewed.split(";")[0] if renewed else nurse["Cookie"]
    path, form = search_as_the_page_does(page)
    answer = _send(conn, path, {"Cookie": cookie, **SEARCH_HX}, form).read().decode()
    assert FOUND in answer and "<tbody>" in answer, (path, "answered no result rows")
    return {**nurse, "Cookie": cookie, **SEARCH_HX}, 200, form


def headers_for(port: int) -> dict:
    """label: (headers, expected status, the form to POST or None to GET) for each page."""
    gzip = {"Accept-Encoding": "gzip"}
    nurse = {"Cookie": log_in(port, "nurse@jinzhou.demo"), **gzip}
    doctor = {"Cookie": log_in(port, "doctor@jinzhou.demo"), **gzip}
    hub = {"Cookie": log_in(port, "coordinator@hub.demo"), **gzip}
    poll = {"HX-Request": "true", "X-Clinic-Poll": "1"}
    return {
        "Login page": (gzip, 200, None),
        "Today, logged in as a clinic nurse": (nurse, 200, None),
        "Patient search as you type (fragment)": searched(port, nurse),
        "Referral inbox of the hub coordinator": (hub, 200, None),
        "Patient page (clinic nurse)": (nurse, 200, None),
        "Badge poll, nothing changed (204)": ({**doctor, **poll}, 204, None),
    }


def in_process_hello() -> float:
    from hello import app
    from inprocess import Page, median_ms

    return median_ms(Page("hello", app.test_client(), "/", {}, 200))[1]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    load_average = os.getloadavg()[0]
    trees = [("after", ROOT, BIN)]
    if BEFORE:
        before = source_tree(BEFORE, workdir)
        trees.insert(0, ("before", before, own_environment(before, workdir)))
    hello_port = free_port()
    servers = [serve("hello:app", hello_port, {**os.environ, "PYTHONPATH": str(ROOT / "bench")})]
    apps = {}
    try:
        for name, tree, bin in trees:
            server, port, medians = start(tree, workdir, name, bin)
            servers.append(server)
            apps[name] = (port, medians, headers_for(port))
        baseline, _ = requests_per_second(hello_port, "/", {}, 200)
        print(f"{'Flask hello-world (baseline)':45} {baseline:8.0f} req/s")
        results = []
        for label in apps["after"][1]:
            row = {}
            for name, (port, medians, headers) in apps.items():
                path, wall, cpu = medians[label]
                rate, size = requests_per_second(port, path, *headers[label])
                form = headers[label][2]
                row[name] = (f"POST {path}" if form else path, rate, size, wall, cpu)
                print(f"{label:45} {name:6} {rate:8.0f} req/s {wall:6.2f} ms in-process "
                      f"({cpu:.2f} ms CPU)")  # fmt: skip
            results.append((label, row))
        hello_median = in_process_hello()
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    write_section("Pages", report(baseline, hello_median, results, load_average))


def report(baseline: float, hello_median: float, results: list, load_average: float) -> str:
    before = BEFORE and f"`{BEFORE}`, before issue 8"
    header = "| Page | URL | Requests/s | vs hello-world | In-process CPU ms (wall ms) | Bytes |"
    rule = "|---|---|---:|---:|---:|---:|"
    if before:
        header = ("| Page | URL | Requests/s before → after | vs hello-world before → after | "
                  "In-process median CPU ms (wall ms) before → after | Bytes after |")  # fmt: skip
    lines = []
    for label, row in results:
        path, rate, size, wall, cpu = row["after"]
        if before:
            _path, old_rate, _size, old_wall, old_cpu = row["before"]
            lines.append(
                f"| {label} | `{path}` | {old_rate:,.0f} → {rate:,.0f} | "
                f"{old_rate / baseline:.0%} → {rate / baseline:.0%} | "
                f"{old_cpu:.2f} → {cpu:.2f} ({old_wall:.1f} → {wall:.1f}) | {size:,} |"
            )
        else:
            lines.append(f"| {label} | `{path}` | {rate:,.0f} | {rate / baseline:.0%} | "
                         f"{cpu:.2f} ({wall:.1f}) | {size:,} |")  # fmt: skip
    return f"""
Command: `make bench` (`bench/pages.py`). Machine: {machine()}.
1-minute load average when it started: {load_average:.1f}, when it ended:
{os.getloadavg()[0]:.1f} (other engineers' test suites share the 2 cores: absolute figures are
low and noisy; the ratios, measured in the same run, are the figures to compare).
All servers: gunicorn, 1 worker × 8 threads (gthread), SQLite with the demo data; {CLIENTS}
keep-alive HTTP clients on the same machine for {SECONDS:g} s per URL, hello-world first, then
each page {"on the code before (" + before + ") and after, one after the other" if before else ""}.
Hello-world: {baseline:,.0f} requests/s; in-process median CPU time {hello_median:.2f} ms.
In-process: median of {REQUESTS} requests through Flask's test client (after 20 warm-ups),
gzip asked; the CPU time of the process per request (what the page costs; far less inflated
than wall-clock time by the other work on the machine, but not immune to it: the two trees
are measured one after the other), wall-clock time in brackets.

{header}
{rule}
""" + "\n".join(lines)


if __name__ == "__main__":
    main()
