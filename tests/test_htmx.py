"""Page or fragment is decided in one place; messages reach htmx requests in HX-Trigger."""

import json

from clinic.models import AuditEvent, User

from conftest import log_in


def test_htmx_region_request_gets_only_the_fragment(admin):
    response = admin.get("/admin/audit?action=login", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="audit-rows"')
    assert "<html" not in body
    assert "HX-Request" in response.headers["Vary"]


def test_boosted_navigation_and_history_restore_get_the_full_page(admin):
    for extra in ({"HX-Boosted": "true"}, {"HX-History-Restore-Request": "true"}):
        response = admin.get("/admin/audit", headers={"HX-Request": "true", **extra})
        assert "<html" in response.get_data(as_text=True)
        assert "HX-Request" in response.headers["Vary"]


def test_plain_request_gets_the_full_page(admin):
    assert "<html" in admin.get("/admin/audit").get_data(as_text=True)


def test_flash_messages_travel_in_an_hx_trigger_event(admin):
    nurse = User.get(User.email == "nurse@jinzhou.demo")
    admin.post(f"/admin/users/{nurse.id}/active", data={"active": "0"})
    response = admin.get("/admin/audit", headers={"HX-Request": "true"})
    events = json.loads(response.headers["HX-Trigger"])
    assert events["flash"][0]["category"] == "success"
    assert "logged out everywhere" in events["flash"][0]["message"]


def test_chinese_messages_travel_safely_in_headers(app, client, demo_data):
    log_in(client, "admin@hub.demo")
    client.post("/language", data={"lang": "zh_Hant_HK"})
    nurse = User.get(User.email == "nurse@jinzhou.demo")
    client.post(f"/admin/users/{nurse.id}/active", data={"active": "0"})
    response = client.get("/admin/audit", headers={"HX-Request": "true"})
    events = json.loads(response.headers["HX-Trigger"])
    assert "已停用" in events["flash"][0]["message"]


def test_errors_on_htmx_requests_become_a_message_not_a_page(doctor):
    response = doctor.get("/admin/audit", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert response.get_data(as_text=True) == ""
    message = json.loads(response.headers["HX-Trigger"])["flash"][0]
    assert message["category"] == "error" and "role" in message["message"]


def test_forbidden_page_is_friendly_and_audited(doctor):
    response = doctor.get("/admin/audit")
    assert response.status_code == 403
    assert "Not allowed" in response.get_data(as_text=True)
    assert AuditEvent.select().where(AuditEvent.action == "forbidden").count() == 1


def test_an_unexpected_error_gets_the_friendly_page(app):
    def broken():
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", "broken", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/broken", headers={"Accept-Language": "zh-HK"})
    assert response.status_code == 500
    assert "系統出錯" in response.get_data(as_text=True)
    assert "a bug" not in response.get_data(as_text=True)
