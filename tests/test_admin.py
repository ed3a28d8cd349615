"""Administration: the audit log reads in the administrator's language; users can be stopped."""

from clinic import demo
from clinic.models import ADMIN, CLINIC, DOCTOR, HUB, AuditEvent, Organisation, User

from conftest import log_in, user


def test_audit_actions_are_shown_in_the_readers_language(admin):
    AuditEvent.create(action="some_future_action")
    admin.post("/language", data={"lang": "zh_Hant_HK"})
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "已登入" in page  # the admin's own login
    assert "some_future_action" in page  # a code without a label is still shown


def test_admin_deactivates_a_user_who_is_then_logged_out(admin, nurse):
    assert nurse.get("/today").status_code == 200
    response = admin.post(
        f"/admin/users/{user('nurse@jinzhou.demo').id}/active", data={"active": "0"}
    )
    assert response.status_code == 303
    assert nurse.get("/today").status_code == 302
    assert AuditEvent.select().where(AuditEvent.action == "user_deactivated").count() == 1


def test_only_administrators_reach_administration(doctor, coordinator):
    for client in (doctor, coordinator):
        assert client.get("/admin/audit").status_code == 403
        assert client.get("/admin/users").status_code == 403


def make_admin(app, email, organisation):
    with app.app_context():
        User.create_with_password(
            "admin-pw-for-tests", email=email, name="Admin", role=ADMIN, organisation=organisation
        )
    return log_in(app.test_client(), email, "admin-pw-for-tests")


def test_a_clinic_admin_governs_only_their_clinic_and_sees_no_patients(app, login, make_patient):
    patient = make_patient()
    login("coordinator@hub.demo")  # an event of the hub in the audit log
    clinic_admin = make_admin(app, "admin@jinzhou.demo", Organisation.by_name(demo.CLINIC_A))
    people = clinic_admin.get("/admin/users").get_data(as_text=True)
    assert "nurse@jinzhou.demo" in people
    assert "doctor@huangge.demo" not in people and "admin@hub.demo" not in people
    hub_admin = user("admin@hub.demo")
    refused = clinic_admin.post(f"/admin/users/{hub_admin.id}/active", data={"active": "0"})
    assert refused.status_code == 404
    assert User.get_by_id(hub_admin.id).active
    log = clinic_admin.get("/admin/audit").get_data(as_text=True)
    assert "Logged in" in log  # their own login
    assert "HO Siu Fong" not in log
    assert clinic_admin.get(f"/patients/{patient.id}").status_code == 404


def test_a_hub_admin_governs_the_alliance_and_no_other(app, admin):
    other_hub = Organisation.create(name="Other Hub Hospital", kind=HUB)
    other_clinic = Organisation.create(name="Other Clinic", kind=CLINIC)
    other_clinic.link_hub(other_hub)
    with app.app_context():
        outsider = User.create_with_password(
            "outsider-pw-2026", email="doctor@other.demo", name="Outsider", role=DOCTOR,
            organisation=other_clinic,
        )  # fmt: skip
    people = admin.get("/admin/users").get_data(as_text=True)
    assert "doctor@huangge.demo" in people and "nurse@jinzhou.demo" in people
    assert "doctor@other.demo" not in people
    assert admin.post(f"/admin/users/{outsider.id}/active", data={"active": "0"}).status_code == 404
    huangge = user("doctor@huangge.demo")
    assert admin.post(f"/admin/users/{huangge.id}/active", data={"active": "0"}).status_code == 303
    assert not User.get_by_id(huangge.id).active
