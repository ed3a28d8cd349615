"""Schema creation and upgrade keep data; the audit log is append-only; SQLite is set up safely."""

import sqlite3
import threading

import pytest
from peewee import IntegrityError, InternalError, OperationalError

from clinic import create_app, demo
from clinic.db import db, init_schema, write_transaction
from clinic.models import AuditEvent, Organisation, User

from conftest import TEST_CONFIG


def test_init_db_upgrades_an_older_database_and_keeps_its_rows(app, runner, demo_data):
    users_before = User.select().count()
    # An older release had no time-zone column, no audit log and fewer indexes.
    db.execute_sql("DROP TABLE audit_event")
    db.execute_sql("DROP INDEX user_session_ended_at")
    db.execute_sql('ALTER TABLE "organisation" DROP COLUMN timezone')
    db.close()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert {"timezone"} <= {c.name for c in db.get_columns("organisation")}
    assert "user_session_ended_at" in {i.name for i in db.get_indexes("user_session")}
    assert User.select().count() == users_before
    assert Organisation.by_name(demo_data.CLINIC_A) is not None
    AuditEvent.create(action="after_upgrade")
    assert AuditEvent.select().count() == 1


def test_init_db_twice_changes_nothing(app, runner, demo_data):
    for _ in range(2):
        assert runner.invoke(args=["init-db"]).exit_code == 0
    assert User.select().count() == len(demo_data.ACCOUNTS)


def test_audit_log_refuses_updates_and_deletes(app):
    event = AuditEvent.create(action="patient_viewed", object_type="patient", object_id="1")
    with pytest.raises((IntegrityError, InternalError)), db.atomic():
        AuditEvent.update(action="nothing_to_see").where(AuditEvent.id == event.id).execute()
    with pytest.raises((IntegrityError, InternalError)), db.atomic():
        AuditEvent.delete().where(AuditEvent.id == event.id).execute()
    assert AuditEvent.get_by_id(event.id).action == "patient_viewed"


@pytest.fixture
def sqlite_app(tmp_path):
    """An app on a SQLite file whatever TEST_DATABASE_URL says: these are SQLite's own settings."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}"})
    init_schema()
    yield app
    db.close()
    db.obj.close_all()


def test_sqlite_is_durable_and_waits_for_locks(sqlite_app):
    names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    pragma = {name: db.execute_sql(f"PRAGMA {name}").fetchone()[0] for name in names}
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 10_000,
    }


def test_write_transactions_take_the_write_lock_at_begin(sqlite_app):
    """Read-then-write work holds the lock from its first statement, so it can't fail half-way."""
    inside, release = threading.Event(), threading.Event()

    def writer():
        with write_transaction():
            Organisation.select().count()
            inside.set()
            release.wait(5)
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(5)
    other = sqlite3.connect(db.obj.database, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        release.set()
        thread.join()


def test_backup_writes_a_consistent_copy(sqlite_app, tmp_path):
    with sqlite_app.app_context():
        demo.load()
    target = tmp_path / "copy.db"
    result = sqlite_app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT count(*) FROM users").fetchone()[0] == len(demo.ACCOUNTS)
    copy.close()


def test_foreign_keys_are_enforced(app):
    with pytest.raises((IntegrityError, OperationalError)), db.atomic():
        User.create(email="x@y.z", name="X", role="doctor", organisation=999, password_hash="x")


def test_init_db_adds_the_administration_and_second_factor_columns(app, runner, demo_data):
    # The release before alliance administration: no address, phone or second factor.
    db.execute_sql("DROP TABLE recovery_code")
    db.execute_sql("DROP TABLE trusted_device")
    for table, column in (("organisation", "address"), ("organisation", "phone"),
                          ("organisation", "mfa_required"), ("users", "must_change_password"),
                          ("users", "totp_secret")):  # fmt: skip
        db.execute_sql(f'ALTER TABLE "{table}" DROP COLUMN {column}')
    db.close()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert {"address", "phone", "mfa_required"} <= {c.name for c in db.get_columns("organisation")}
    clinic = Organisation.by_name(demo_data.CLINIC_A)
    assert clinic.mfa_required is False and clinic.address is None
    doctor = User.authenticate("doctor@jinzhou.demo", demo_data.DEMO_PASSWORD)
    assert doctor.must_change_password is False and doctor.totp_secret is None


def test_init_db_adds_the_worklist_indexes_to_an_older_database(app, runner, demo_data):
    # Before issue 8 a referral had one-column indexes only: the inbox, outbox and "needs our
    # action" lists of a large register read every referral of the organisation.
    worklists = [
        ["to_org_id", "list_rank", "received_at", "id"],
        ["from_org_id", "list_rank", "received_at", "id"],
        ["owner_id", "list_rank", "received_at", "id"],
    ]
    for index in db.get_indexes("referral"):
        if index.columns in worklists:
            db.execute_sql(f'DROP INDEX "{index.name}"')
    db.close()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    indexed = [index.columns for index in db.get_indexes("referral")]
    assert all(columns in indexed for columns in worklists), indexed


@pytest.mark.parametrize("command", [["init-db"], ["reindex-search", "--batch", "2"]])
def test_patients_saved_before_the_last_four_key_are_found_by_it_after_the_upgrade(
    app, runner, demo_data, make_patient, command
):
    from clinic.models import Patient, PatientSearchKey

    patient = make_patient(english_name="YIP, Wing Sze", phone="+85260137788")
    clinic = patient.clinic_id
    assert [p.id for p in Patient.search(clinic, "7788")] == [patient.id]
    # As an older release saved it: every key but the last four digits of the phone.
    PatientSearchKey.delete().where(
        PatientSearchKey.patient == patient.id, PatientSearchKey.key == "7788"
    ).execute()
    assert Patient.search(clinic, "7788") == []
    assert patient.id in [p.id for p in Patient.search(clinic, "6013")]  # the start still works
    result = runner.invoke(args=command)
    assert result.exit_code == 0, result.output
    assert "Search keys rebuilt for" in result.output
    assert [p.id for p in Patient.search(clinic, "7788")] == [patient.id]
    assert [p.id for p in Patient.search(clinic, "wing sze")] == [patient.id]  # the rest kept
    keys = PatientSearchKey.select().where(PatientSearchKey.patient == patient.id)
    assert len({k.key for k in keys}) == keys.count()  # rebuilt, not added twice
    again = runner.invoke(args=["init-db"])
    assert "Search keys rebuilt" not in again.output  # nothing left to backfill
