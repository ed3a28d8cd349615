"""Today: one worklist per user; the empty state only when nothing waits."""

import datetime as dt

from clinic.db import utcnow
from clinic.models import Consultation, Organisation
from clinic.models.referrals import HubService, Referral

from conftest import user


def test_hub_today_lists_waiting_referrals_instead_of_the_empty_state(
    app, coordinator, make_patient
):
    doctor = user("doctor@jinzhou.demo")
    referral = Referral.create_draft(
        doctor, make_patient(), to_org=Organisation.by_name("Nansha Hub Hospital"),
        service=HubService.get(HubService.code == "cardiology"), priority="urgent",
        reason="Chest pain",
    )  # fmt: skip
    with app.app_context():
        referral.submit(doctor)
    page = coordinator.get("/today").get_data(as_text=True)
    assert "Referrals waiting on us" in page and "CHAN, Tai Man" in page
    assert "Nothing waits on you" not in page


def test_a_role_with_nothing_to_do_sees_the_empty_state(pharmacist):
    # The demo's drug questions wait on the pharmacists: with none open, nothing waits.
    Consultation.update(state="cancelled", owner=None, due_by=None).execute()
    assert "Nothing waits on you" in pharmacist.get("/today").get_data(as_text=True)


def test_the_pharmacists_today_is_the_queue_overdue_first(pharmacist):
    Consultation.update(due_by=utcnow() - dt.timedelta(hours=1)).where(
        Consultation.drug_text == "Amlodipine"
    ).execute()
    page = pharmacist.get("/today").get_data(as_text=True)
    assert "Pharmacist queue" in page and "Nothing waits on you" not in page
    queue = page[page.index("Pharmacist queue") :]
    assert queue.index("Amlodipine") < queue.index("Metformin")  # the overdue one first


def test_clinic_today_shows_the_check_in_queue(nurse):
    page = nurse.get("/today").get_data(as_text=True)
    assert 'id="queue"' in page and "Check-in queue" in page
    assert "Nothing waits on you" not in page
