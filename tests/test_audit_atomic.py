"""A committed change always has its audit row: a failure between the two leaves neither."""

import pytest

from clinic.models import AuditEvent, Consent, HubService, Organisation, Patient, User, Visit

from conftest import user

REGISTRATION = {
    "chinese_name": "陳美玲",
    "english_name": "CHAN, Mei Ling",
    "sex": "F",
    "date_of_birth": "1975-03-08",
    "residency": "hk",
    "preferred_language": "en",
    "documents-0-kind": "hkid",
    "documents-0-number": "E364912(5)",
    "phone": "9123 4567",
}


class AuditFailed(Exception):
    pass


@pytest.fixture
def audit_fails(monkeypatch):
    """From now on, writing the audit row fails (as a full disk or a lost connection would)."""

    def fail():
        def write(cls, user, action, *args, **kwargs):
            raise AuditFailed(action)

        monkeypatch.setattr(AuditEvent, "write", classmethod(write))

    return fail


def refused(client, url: str, data: dict | None = None) -> None:
    with pytest.raises(AuditFailed):
        client.post(url, data=data or {})


def test_registration_is_not_kept_without_its_audit_row(nurse, audit_fails):
    audit_fails()
    refused(nurse, "/patients/new", REGISTRATION)
    assert not Patient.select().where(Patient.english_name == "CHAN, Mei Ling").exists()


def test_edit_consents_and_check_in_roll_back_with_their_audit_row(
    nurse, make_patient, audit_fails
):
    patient = make_patient()
    consent = Consent.create(patient=patient, scope="cross_border", recorded_by=user(
        "nurse@jinzhou.demo"))  # fmt: skip
    audit_fails()
    refused(nurse, f"/patients/{patient.id}/edit", REGISTRATION | {"english_name": "WONG, Ka"})
    assert Patient.get_by_id(patient.id).english_name == "CHAN, Tai Man"
    refused(nurse, f"/patients/{patient.id}/consents", {"scope": "cross_border"})
    assert patient.consents.count() == 1
    refused(nurse, f"/patients/{patient.id}/consents/{consent.id}/withdraw")
    assert Consent.get_by_id(consent.id).withdrawn_at is None
    refused(nurse, f"/patients/{patient.id}/check-in")
    assert not Visit.select().where(Visit.patient == patient).exists()


def test_admin_changes_roll_back_with_their_audit_row(admin, audit_fails):
    nurse = user("nurse@jinzhou.demo")
    clinic = Organisation.by_name("Jinzhou Family-Doctor Clinic")
    audit_fails()
    refused(admin, "/admin/organisations/new", {"name": "New Clinic", "kind": "clinic"})
    assert Organisation.by_name("New Clinic") is None
    refused(admin, f"/admin/organisations/{clinic.id}", {"name": "Renamed", "kind": "clinic"})
    assert Organisation.by_name("Renamed") is None
    new_user = {"email": "n@x.example", "name": "N", "organisation": clinic.id, "role": "nurse"}
    refused(admin, "/admin/users/new", new_user)
    assert not User.select().where(User.email == "n@x.example").exists()
    refused(admin, f"/admin/users/{nurse.id}/password")
    assert User.get_by_id(nurse.id).password_hash == nurse.password_hash
    refused(admin, f"/admin/users/{nurse.id}/active", {"active": "0"})
    assert User.get_by_id(nurse.id).active
    coordinator = user("coordinator@hub.demo")
    refused(admin, f"/admin/users/{coordinator.id}/second-factor")
    assert User.get_by_id(coordinator.id).totp_secret
    refused(admin, f"/admin/users/{nurse.id}", {"name": "N", "organisation": clinic.id,
                                                "role": "doctor"})  # fmt: skip
    assert User.get_by_id(nurse.id).role == "nurse"
    hub = Organisation.by_name("Nansha Hub Hospital")
    service = {"code": "eye", "name": "Eye", "name_zh_hant": "眼科", "name_zh_hans": "眼科"}
    refused(admin, f"/admin/organisations/{hub.id}/services/new", service)
    assert not HubService.select().where(HubService.code == "eye").exists()


def test_a_workflow_move_rolls_back_with_its_audit_row(coordinator, make_patient, audit_fails):
    from clinic.db import utcnow
    from clinic.models import Referral, ReferralEvent

    doctor, hub = user("doctor@jinzhou.demo"), Organisation.by_name("Nansha Hub Hospital")
    referral = Referral.create_draft(
        doctor, make_patient(), to_org=hub, service=HubService.get(HubService.code == "imaging"),
        priority="urgent", reason="Chest pain",
    )  # fmt: skip
    referral.submit(doctor)
    events = ReferralEvent.select().where(ReferralEvent.referral == referral).count()
    audit_fails()
    with pytest.raises(AuditFailed):
        referral.accept(user("coordinator@hub.demo"), utcnow(), "Room 1")
    stored = Referral.get_by_id(referral.id)
    assert stored.state == "submitted"  # the compare-and-set went with the audit row
    assert ReferralEvent.select().where(ReferralEvent.referral == referral).count() == events
