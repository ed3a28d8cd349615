"""Today: one worklist per user; the empty state only when nothing waits."""

from clinic.models import Organisation
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
    assert "Nothing waits on you" in pharmacist.get("/today").get_data(as_text=True)


def test_clinic_today_shows_the_check_in_queue(nurse):
    page = nurse.get("/today").get_data(as_text=True)
    assert 'id="queue"' in page and "Check-in queue" in page
    assert "Nothing waits on you" not in page
