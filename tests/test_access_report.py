"""The patient access report: every read and change of one record, across the alliance."""

import pytest

from clinic.models import Organisation
from clinic.models.referrals import HubService, Referral

from conftest import user


@pytest.fixture
def referred(make_patient):
    """A patient of Jinzhou referred to the hub."""
    patient = make_patient(chinese_name="林美玉", english_name="LAM, Mei Yuk")
    doctor = user("doctor@jinzhou.demo")
    referral = Referral.create_draft(
        doctor, patient, to_org=Organisation.by_name("Nansha Hub Hospital"),
        service=HubService.get(HubService.code == "cardiology"), priority="urgent",
        reason="Chest pain",
    )  # fmt: skip
    referral.submit(doctor)
    return patient, referral


def rows(page) -> list[str]:
    return page.get_data(as_text=True).split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]


def test_the_doctor_sees_who_read_and_changed_the_record_across_the_alliance(
    doctor, nurse, coordinator, referred
):
    patient, referral = referred
    nurse.post("/patients/", data={"q": "Nobody Here"})  # a search not listing them
    nurse.post("/patients/", data={"q": "林美玉"})
    nurse.get(f"/patients/{patient.id}")
    nurse.post(f"/patients/{patient.id}/consents", data={"scope": "cross_border"})
    coordinator.get(f"/referrals/{referral.id}")
    coordinator.get(f"/referrals/{referral.id}/letter")
    page = doctor.get(f"/patients/{patient.id}/access")
    assert page.status_code == 200
    lines = rows(page)
    assert "Referral submitted" in lines[0] and "WONG Ka Yan" in lines[0]  # the fixture's move
    assert "Patients searched" in lines[1] and f"shown: {patient.id}" in lines[1]
    assert "0 shown" not in page.get_data(as_text=True)
    assert "Patient record viewed" in lines[2] and "LEE Mei Ling" in lines[2]
    assert "Consent recorded" in lines[3]
    hub_lines = [line for line in lines if "HO Siu Fong" in line]
    assert "Record viewed" in hub_lines[0] and "Nansha Hub Hospital" in hub_lines[0]
    assert "Printed" in hub_lines[1] and f"referral #{referral.id}" in hub_lines[1]
    assert "Access report opened" in lines[-1]  # opening the report is itself recorded
    assert "/access" in doctor.get(f"/patients/{patient.id}").get_data(as_text=True)


def test_the_admin_opens_it_from_the_audit_log(admin, nurse, referred):
    patient, _ = referred
    nurse.get(f"/patients/{patient.id}")
    log = admin.get("/admin/audit").get_data(as_text=True)
    assert f'href="/patients/{patient.id}/access"' in log
    assert admin.get(f"/patients/{patient.id}/access").status_code == 200


def test_no_one_else_opens_it(nurse, coordinator, other_clinic_doctor, referred):
    patient, _ = referred
    assert nurse.get(f"/patients/{patient.id}/access").status_code == 403
    assert coordinator.get(f"/patients/{patient.id}/access").status_code == 403
    assert other_clinic_doctor.get(f"/patients/{patient.id}/access").status_code == 404
