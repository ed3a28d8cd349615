"""Administration: the audit log reads in the administrator's language; users can be stopped."""

from clinic.models import AuditEvent

from conftest import user


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
