"""Requests per second of key pages against a bare Flask hello-world, both under gunicorn.

Run by `make bench`. Starts two gunicorn servers on local ports (one worker, 8 threads: the
SQLite deployment), loads the app with the demo data in a throw-away SQLite database, drives
each URL with keep-alive HTTP clients for a fixed time, and writes docs/benchmarks.md.
"""

import http.client
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

from report import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SETTINGS = "--workers 1 --threads 8 --worker-class gthread --log-level warning"


def serve(app: str, port: int, env: dict, settings: str = SETTINGS) -> subprocess.Popen:
    # Settings given here in full (not gunicorn.conf.py), identical for both servers; no access log.
    command = [str(BIN / "gunicorn"), "--config", "/dev/null", *settings.split()]
    command += ["--bind", f"127.0.0.1:{port}", app]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"{app} did not start")


def log_in(port: int, email: str) -> str:
    """Log in over HTTP like a browser; returns the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/login")
    response = conn.getresponse()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.read().decode())
    form = urlencode({"email": email, "password": "demo-pass-2026", "csrf_token": token.group(1)})
    conn.request(
        "POST",
        "/login",
        form,
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 303, response.status
    return response.getheader("Set-Cookie").split(";")[0]


def requests_per_second(port: int, path: str, headers: dict) -> tuple[float, int]:
    counts, stop = [0] * CLIENTS, time.monotonic() + SECONDS
    sizes = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (path, response.status)
            counts[index] += 1
            if not sizes:
                sizes.append(len(body))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / SECONDS, sizes[0]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT / "bench"),
    }
    flask = [str(BIN / "flask"), "--app", "clinic"]
    subprocess.run([*flask, "init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*flask, "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    hello_port, app_port = free_port(), free_port()
    servers = [serve("hello:app", hello_port, env), serve("wsgi:app", app_port, env)]
    try:
        nurse = {"Cookie": log_in(app_port, "nurse@jinzhou.demo"), "Accept-Encoding": "gzip"}
        hub = {"Cookie": log_in(app_port, "coordinator@hub.demo"), "Accept-Encoding": "gzip"}
        rows = [("Flask hello-world (baseline)", hello_port, "/", {})]
        rows += [
            ("Login page", app_port, "/login", {"Accept-Encoding": "gzip"}),
            ("Today, logged in as a clinic nurse", app_port, "/today", nurse),
            (
                "Patient search as you type (fragment)",
                app_port,
                "/patients/?q=chan",
                {**nurse, "HX-Request": "true"},
            ),
            ("Referral inbox of the hub coordinator", app_port, "/referrals/", hub),
        ]
        results = []
        for label, port, path, headers in rows:
            rate, size = requests_per_second(port, path, headers)
            results.append((label, path, rate, size))
            print(f"{label:45} {rate:8.0f} req/s  ({size} bytes on the wire)")
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    baseline = results[0][2]
    table = "\n".join(
        f"| {label} | `{path}` | {rate:,.0f} | {rate / baseline:.0%} | {size:,} |"
        for label, path, rate, size in results
    )
    write_section(
        "Pages",
        f"""
Command: `make bench` (`bench/pages.py`). Machine: {machine()}.
Both servers: gunicorn, 1 worker × 8 threads (gthread), SQLite with the demo data; {CLIENTS}
keep-alive HTTP clients on the same machine for {SECONDS:g} s per URL (client and server share
the cores, so absolute numbers are low; the ratio to the baseline is the figure to watch).

| Page | URL | Requests/s | vs hello-world | Bytes on the wire |
|---|---|---:|---:|---:|
{table}
""",
    )


if __name__ == "__main__":
    main()
