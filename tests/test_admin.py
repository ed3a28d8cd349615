"""Administration: the audit log reads in the administrator's language; users can be stopped."""

import re

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


def test_the_audit_log_reads_in_chinese_and_filters_by_selects(admin, doctor, nurse):
    import datetime as dt

    nurse_id = user("nurse@jinzhou.demo").id
    AuditEvent.create(action="patient_viewed", object_type="patient", object_id="7", user=nurse_id)
    AuditEvent.create(action="patient_viewed", object_type="patient", object_id="8", user=nurse_id)
    AuditEvent.create(action="time_probe", at=dt.datetime(2026, 3, 5, 20, 30))  # 6 Mar in HK
    admin.post("/language", data={"lang": "zh_Hant_HK"})
    page = admin.get(f"/admin/audit?user_id={nurse_id}&object_type=patient").get_data(as_text=True)
    assert '<select id="user_id" name="user_id">' in page and '<select id="object_type"' in page
    assert '<td data-label="記錄">病人 <a' in page  # the record type in the reader's language
    assert f'title="nurse@jinzhou.demo">{user("nurse@jinzhou.demo").name}</span>' in page
    assert 'href="/admin/audit?object_type=patient&amp;object_id=7"' in page
    one = admin.get("/admin/audit?object_type=patient&object_id=7").get_data(as_text=True)
    assert ">#7</a>" in one and ">#8</a>" not in one
    day = admin.get("/admin/audit?since=2026-03-06&until=2026-03-06").get_data(as_text=True)
    row = '<td title="time_probe"'
    assert row in day
    assert row not in admin.get("/admin/audit?since=2026-03-07").get_data(as_text=True)
    assert row not in admin.get("/admin/audit?until=2026-03-05").get_data(as_text=True)


def test_the_audit_date_filter_reads_as_dates_not_as_referral_directions(
    admin, doctor, make_patient
):
    from clinic.models import Referral
    from clinic.models.referrals import HubService

    admin.post("/language", data={"lang": "zh_Hant_HK"})
    page = admin.get("/admin/audit").text
    assert '<label for="since">由</label>' in page and '<label for="until">至</label>' in page
    assert "轉出" not in page and "轉至" not in page
    admin.post("/language", data={"lang": "zh_Hans_CN"})
    page = admin.get("/admin/audit").text
    assert '<label for="since">从</label>' in page and '<label for="until">至</label>' in page
    admin.post("/language", data={"lang": "en"})
    page = admin.get("/admin/audit").text
    assert '<label for="since">From</label>' in page and '<label for="until">To</label>' in page
    r = Referral.create_draft(
        user("doctor@jinzhou.demo"), make_patient(), to_org=Organisation.by_name(demo.HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
    )  # fmt: skip
    doctor.post("/language", data={"lang": "zh_Hant_HK"})
    referral = doctor.get(f"/referrals/{r.id}").text  # a referral's ends keep their words
    assert "<dt>轉出</dt>" in referral and "<dt>轉至</dt>" in referral


def test_the_filtered_audit_rows_download_as_csv(admin, nurse):
    nurse_id = user("nurse@jinzhou.demo").id
    AuditEvent.create(action="patient_viewed", object_type="patient", object_id="7", user=nurse_id)
    admin.post("/language", data={"lang": "zh_Hans_CN"})
    response = admin.get(f"/admin/audit.csv?user_id={nurse_id}&object_type=patient")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = text.strip().splitlines()
    assert len(rows) == 2  # the header and the one row the filters leave
    assert user("nurse@jinzhou.demo").name in rows[1] and "#7" in rows[1]
    assert AuditEvent.select().where(AuditEvent.action == "export_audit").count() == 1


def test_audit_details_read_in_chinese_and_the_patient_filter_is_a_select(app, admin):
    from flask_babel import force_locale

    from clinic.admin.views import detail_label

    nurse_id = user("nurse@jinzhou.demo").id
    details = [
        ("call_in", "patient", "7", "visit 41 → with_doctor"),
        ("list", "referral", None, "inbox: 11,12"),
        ("view", "referral", "11", "accept form"),
        ("accept", "referral", "11", "accepted"),
        ("consent_recorded", "patient", "8", "consent 5 cross_border"),
        ("user_created", "user", "3", "cli: nurse at Jinzhou Family-Doctor Clinic"),
    ]
    for action, kind, object_id, detail in details:
        AuditEvent.create(
            action=action, object_type=kind, object_id=object_id, detail=detail, user=nurse_id
        )
    with app.test_request_context(), force_locale("zh_Hant_HK"):
        expected = [detail_label(detail, kind) for _a, kind, _i, detail in details]
    for english, chinese in zip(details, expected, strict=True):
        named = chinese.replace("Jinzhou Family-Doctor Clinic", "")  # a name stays as written
        assert chinese != english[3] and not re.search(r"[a-z]{4}", named), chinese
    admin.post("/language", data={"lang": "zh_Hant_HK"})
    page = admin.get("/admin/audit").get_data(as_text=True)
    for chinese in expected:
        assert f'<td data-label="詳情">{chinese}</td>' in page, chinese
    assert "就診 #41 →" in page and "收件箱：11,12" in page
    assert '<select id="patient" name="patient">' in page
    assert '<option value="7">#7</option>' in page
    only = admin.get("/admin/audit?patient=7").get_data(as_text=True)
    assert expected[0] in only and expected[4] not in only
    csv = admin.get("/admin/audit.csv?patient=7").get_data(as_text=True).strip().splitlines()
    assert len(csv) == 2 and expected[0] in csv[1]  # the filtered row, its detail translated


def test_service_day_audit_details_read_in_chinese(app, admin):
    from flask_babel import force_locale

    from clinic.admin.views import detail_label

    details = [
        ("view", "service_day", "4", "timeline"),
        ("print", "service_day", "4", "roster"),
        ("list", "service_booking", None, "to call"),
        ("list", "patient", None, "service day: choose patient"),
        ("list", "booking", None, "patient 7"),
        ("book", "patient", "7", "service day 4: booking → waitlisted"),
        ("publish", "service_day", "4", "published"),
        ("feed_created", "calendar_feed", None, "staff"),
    ]
    for action, kind, object_id, detail in details:
        AuditEvent.create(action=action, object_type=kind, object_id=object_id, detail=detail)
    with app.test_request_context(), force_locale("zh_Hant_HK"):
        expected = [detail_label(detail, kind) for _a, kind, _i, detail in details]
    for english, chinese in zip(details, expected, strict=True):
        assert chinese != english[3] and not re.search(r"[a-z]{4}", chinese), chinese
    assert expected[5] == "服務日 #4：預約 → 在候補名單"
    admin.post("/language", data={"lang": "zh_Hant_HK"})
    page = admin.get("/admin/audit").get_data(as_text=True)
    for chinese in expected:
        assert f'<td data-label="詳情">{chinese}</td>' in page, chinese


def test_every_type_of_record_in_the_audit_log_reads_in_chinese(admin):
    """The record types the demo's work leaves in the log (every domain's), in the filter and
    in the rows: none shown as its code."""
    admin.post("/language", data={"lang": "zh_Hant_HK"})
    page = admin.get("/admin/audit").get_data(as_text=True)
    select = re.search(r'<select id="object_type".*?</select>', page, re.DOTALL).group(0)
    options = dict(re.findall(r'<option value="([a-z_]+)"[^>]*>([^<]*)</option>', select))
    kinds = {e.object_type for e in AuditEvent.select(AuditEvent.object_type).distinct()}
    assert {"consultation", "phrase", "referral", "service_day"} <= kinds
    for kind in kinds - {None, ""}:
        assert re.search(r"[\u4e00-\u9fff]", options[kind]), (kind, options[kind])
