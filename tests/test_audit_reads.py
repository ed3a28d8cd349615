"""Every read that shows patient data writes one audit row, naming what it showed."""

from clinic.models import AuditEvent, Organisation, Referral

from conftest import user


def rows_of(client, url, **kwargs):
    """(status, the audit rows the request wrote)."""
    before = AuditEvent.select().count()
    response = client.get(url, **kwargs)
    written = list(AuditEvent.select().order_by(AuditEvent.id).offset(before))
    return response.status_code, written


def test_today_writes_one_row_with_the_patients_it_shows(coordinator):
    waiting = [r.patient_id for r in Referral.awaiting(user("coordinator@hub.demo"))]
    assert waiting
    status, written = rows_of(coordinator, "/today")
    assert status == 200 and len(written) == 1
    shown = set(written[0].detail.removeprefix("today: ").split(","))
    assert shown == {str(p) for p in waiting}


def test_the_queue_writes_one_row_with_the_patients_it_shows(nurse, make_patient):
    patient = make_patient()
    nurse.post(f"/patients/{patient.id}/check-in")
    for url in ("/patients/queue", "/today"):
        status, written = rows_of(nurse, url)
        assert status == 200 and len(written) == 1, url
        assert str(patient.id) in written[0].detail.split(": ")[1].split(","), url


def test_the_lists_name_the_referrals_they_show(coordinator):
    status, written = rows_of(coordinator, "/referrals/")
    assert status == 200 and len(written) == 1
    shown = written[0].detail.removeprefix("inbox: ").split(",")
    assert shown and all(part.isdigit() for part in shown)


def test_the_draft_edit_form_is_audited(doctor, make_patient):
    patient = make_patient()
    hub = Organisation.by_name("Nansha Hub Hospital")
    draft = Referral.create_draft(user("doctor@jinzhou.demo"), patient, to_org=hub, reason="x")
    status, written = rows_of(doctor, f"/referrals/{draft.id}/edit")
    assert status == 200 and len(written) == 1
    assert (written[0].action, written[0].object_id) == ("view", str(draft.id))


def test_a_too_many_attempts_answer_is_audited(client, demo_data):
    for _ in range(10):
        client.post("/login", data={"email": "doctor@jinzhou.demo", "password": "guess-1234"})
    before = AuditEvent.select().where(AuditEvent.action == "login_locked").count()
    blocked = client.post("/login", data={"email": "doctor@jinzhou.demo", "password": "guess-1234"})
    assert blocked.status_code == 429
    after = AuditEvent.select().where(AuditEvent.action == "login_locked").count()
    assert after == before + 1
