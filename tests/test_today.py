"""Today: one worklist per user; the empty state only when nothing waits."""

import datetime as dt
import re

import pytest
from flask import template_rendered

from clinic.db import utcnow
from clinic.models import Consultation, Organisation
from clinic.models.referrals import HubService, Referral

from conftest import user


def submitted_to_the_hub(app, patient) -> Referral:
    """An urgent cardiology referral from the demo doctor, waiting on the hub."""
    doctor = user("doctor@jinzhou.demo")
    referral = Referral.create_draft(
        doctor, patient, to_org=Organisation.by_name("Nansha Hub Hospital"),
        service=HubService.get(HubService.code == "cardiology"), priority="urgent",
        reason="Chest pain",
    )  # fmt: skip
    with app.app_context():
        referral.submit(doctor)
    return referral


def test_hub_today_lists_waiting_referrals_instead_of_the_empty_state(
    app, coordinator, make_patient
):
    submitted_to_the_hub(app, make_patient())
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


BADGE = re.compile(r'id="badge-referrals"[^>]*>([^<]*)<')


def test_the_navigation_is_kept_per_reader_and_counts_and_shows_a_new_count(
    not_testing, coordinator, make_patient
):
    rendered = []
    record = lambda sender, template, context, **extra: rendered.append(template.name)  # noqa: E731
    with template_rendered.connected_to(record, not_testing):
        first = BADGE.search(coordinator.get("/today").get_data(as_text=True)).group(1)
        coordinator.get("/referrals/")  # another section: its own navigation
        coordinator.get("/today")
        assert rendered.count("_main_nav.html") == 2
        submitted_to_the_hub(not_testing, make_patient())
        page = coordinator.get("/today").get_data(as_text=True)
    assert rendered.count("_main_nav.html") == 3
    assert int(BADGE.search(page).group(1)) == int(first) + 1


def test_a_navigation_kept_for_less_than_it_shows_fails_under_testing(coordinator, monkeypatch):
    from clinic.today import views

    coordinator.get("/today")
    monkeypatch.setattr(views, "language", lambda: "en")  # the key forgets the language
    coordinator.post("/language", data={"lang": "zh_Hant_HK"})
    with pytest.raises(AssertionError, match="navigation shows more than its key"):
        coordinator.get("/today")
