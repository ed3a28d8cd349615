"""Login protection: failed attempts are counted (per account, per address); successes never."""

import logging
import re
import runpy
from pathlib import Path

import pytest

from clinic import create_app

from conftest import TEST_CONFIG, Client, log_in

ROOT = Path(__file__).resolve().parent.parent
DOCTOR = "doctor@jinzhou.demo"


def server(app, **settings):
    """Another app server on the same database, with these settings."""
    other = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["DATABASE_URL"], **settings})
    other.test_client_class = Client
    return other


def wrong(client, email: str = DOCTOR):
    return client.post("/login", data={"email": email, "password": "guess-1234"})


def test_thirty_correct_logins_from_one_address_in_a_minute_all_succeed(app, demo_data):
    # A clinic behind one NAT address at shift change: every right password gets in.
    for _ in range(30):
        client = log_in(app.test_client(), DOCTOR)
        assert client.get("/today").status_code == 200


def test_eleven_wrong_passwords_lock_the_account_with_a_message_saying_when(client, demo_data):
    for _ in range(10):
        assert wrong(client).status_code == 422
    locked = client.post("/login", data={"email": DOCTOR, "password": demo_data.DEMO_PASSWORD})
    assert locked.status_code == 429
    page = locked.get_data(as_text=True)
    assert re.search(r"Too many attempts failed for this account. Try again after \d\d:\d\d", page)
    client.post("/language", data={"lang": "zh_Hant_HK"})
    assert "此帳戶登入失敗次數太多" in wrong(client).get_data(as_text=True)
    # Only that account: a colleague at the same address still logs in.
    log_in(client, "nurse@jinzhou.demo")


def test_failures_from_one_address_meet_a_ceiling(app, demo_data):
    client = server(app, LOGIN_ADDRESS_LIMIT="5 per 15 minutes").test_client()
    for number in range(5):
        assert wrong(client, f"guess{number}@x.demo").status_code == 422
    refused = client.post("/login", data={"email": DOCTOR, "password": demo_data.DEMO_PASSWORD})
    assert refused.status_code == 429
    assert "failed from this network" in refused.get_data(as_text=True)


def test_redis_unreachable_logins_still_work_and_a_warning_is_logged(app, demo_data, caplog):
    dead = server(app, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING):
        client = log_in(dead.test_client(), DOCTOR)
    assert client.get("/today").status_code == 200
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    # Counted in this process meanwhile: never a wide-open door.
    guesser = dead.test_client()
    for _ in range(10):
        assert wrong(guesser, "nurse@jinzhou.demo").status_code == 422
    assert wrong(guesser, "nurse@jinzhou.demo").status_code == 429


def gunicorn_settings(monkeypatch, **environment) -> dict:
    for name in ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_refuses_several_workers_without_redis(monkeypatch):
    postgres = "postgresql://clinic@db/clinic"
    with pytest.raises(SystemExit, match="REDIS_URL"):
        gunicorn_settings(monkeypatch, DATABASE_URL=postgres, WEB_CONCURRENCY="4")
    assert gunicorn_settings(monkeypatch, DATABASE_URL=postgres)["workers"] == 1
    shared = gunicorn_settings(
        monkeypatch, DATABASE_URL=postgres, WEB_CONCURRENCY="4", REDIS_URL="redis://cache/0"
    )
    assert shared["workers"] == 4
