"""Three complete catalogues, locale by user choice then browser script, times in the org's zone."""

import datetime as dt
import re
from io import BytesIO
from pathlib import Path

import flask_babel
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from markupsafe import escape

from clinic.i18n import locale_from_header
from clinic.models import AuditEvent
from clinic.translation import gettext
from clinic.translation import lazy_gettext as _l

from conftest import log_in, user

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("en", "zh_Hant_HK", "zh_Hans_CN")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def catalogue(locale: str):
    path = ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po"
    return read_po(BytesIO(path.read_bytes()), locale=locale)


def messages_in_code() -> set[str]:
    method_map = [("clinic/**.py", "python"), ("templates/**.html", "jinja2")]
    found = extract_from_dir(ROOT, method_map=method_map, keywords=KEYWORDS)
    return {m[2] if isinstance(m[2], str) else m[2][0] for m in found}


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_is_complete_and_has_nothing_fuzzy(locale):
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue(locale) if m.id}
    missing = sorted(messages_in_code() - set(messages))
    assert not missing, f"not in the {locale} catalogue (run make translations): {missing}"
    for key, message in messages.items():
        assert "fuzzy" not in message.flags, f"{locale}: fuzzy {key!r}"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{locale}: untranslated {key!r}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-HK,zh;q=0.9,en;q=0.8", "zh_Hant_HK"),
        ("zh-MO", "zh_Hant_HK"),
        ("zh-TW", "zh_Hant_HK"),
        ("yue", "zh_Hant_HK"),
        ("zh-CN,zh;q=0.9", "zh_Hans_CN"),
        ("zh-SG", "zh_Hans_CN"),
        ("zh", "zh_Hans_CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR", "en"),
        ("", "en"),
    ],
)
def test_browser_language_is_chosen_by_script(header, expected):
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    assert locale_from_header(parse_accept_header(header, LanguageAccept)) == expected


def visible_english(app, page: str) -> set[str]:
    """Catalogue messages that appear, in English, on a page."""
    english = {m.id for m in catalogue("en") if isinstance(m.id, str) and len(m.id) > 3}
    text = re.sub(r"<[^>]+>", "\n", page)
    return {msgid for msgid in english if re.search(rf"(^|\n)\s*{re.escape(msgid)}\s*(\n|$)", text)}


@pytest.mark.parametrize(
    ("accept", "words"), [("zh-HK", ["登入", "密碼"]), ("zh-CN", ["登录", "密码"])]
)
def test_login_page_is_fully_translated(app, client, accept, words):
    page = client.get("/login", headers={"Accept-Language": accept}).get_data(as_text=True)
    for word in words:
        assert word in page
    assert visible_english(app, page) == set()


@pytest.mark.parametrize(("lang", "word"), [("zh_Hant_HK", "今日"), ("zh_Hans_CN", "退出登录")])
def test_home_page_is_fully_translated_after_switching(app, nurse, lang, word):
    nurse.post("/language", data={"lang": lang, "next": "/today"})
    page = nurse.get("/today").get_data(as_text=True)
    assert word in page
    assert visible_english(app, page) == set()


def test_language_choice_is_remembered_for_the_user(app, nurse, login):
    nurse.post("/language", data={"lang": "zh_Hans_CN"})
    assert user("nurse@jinzhou.demo").language == "zh_Hans_CN"
    again = login("nurse@jinzhou.demo")
    assert "退出登录" in again.get("/today").get_data(as_text=True)


def test_language_switch_works_logged_out_and_refuses_unknown_languages(client):
    assert client.post("/language", data={"lang": "zh_Hant_HK"}).status_code == 303
    assert "登入" in client.get("/login").get_data(as_text=True)
    assert client.post("/language", data={"lang": "xx"}).status_code == 400


def test_form_messages_are_in_hong_kong_chinese_not_simplified(client):
    client.post("/language", data={"lang": "zh_Hant_HK"})
    page = client.post("/login", data={"email": "", "password": ""}).get_data(as_text=True)
    assert "請輸入電郵" in page
    assert "该字段" not in page


def test_times_are_shown_in_the_organisations_time_zone(app, admin):
    AuditEvent.create(action="time_probe", at=dt.datetime(2026, 3, 5, 20, 30))
    page = admin.get("/admin/audit?action=time_probe").get_data(as_text=True)
    # 20:30 UTC is 04:30 the next morning in Hong Kong.
    assert "6 Mar 2026 04:30" in page


def test_error_pages_are_translated(client):
    page = client.get("/no-such-page", headers={"Accept-Language": "zh-HK"})
    assert page.status_code == 404
    assert "找不到" in page.get_data(as_text=True)


def test_user_language_beats_the_browser(app, doctor):
    account = user("doctor@jinzhou.demo")
    account.language = "zh_Hant_HK"
    account.save()
    page = doctor.get("/today", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "今日" in page


def test_language_picked_on_the_login_page_becomes_the_users_choice(app, client, demo_data):
    account = user("nurse@jinzhou.demo")
    account.language = "en"
    account.save()
    client.post("/language", data={"lang": "zh_Hans_CN"})
    log_in(client, "nurse@jinzhou.demo")
    assert user("nurse@jinzhou.demo").language == "zh_Hans_CN"
    assert "退出登录" in client.get("/today").get_data(as_text=True)


def test_simplified_chinese_follows_the_glossary_everywhere(doctor):
    # Glossary: clinic = 诊室 on the mainland (诊所 is the Hong Kong word).
    assert not [m.id for m in catalogue("zh_Hans_CN") if m.id and "诊所" in m.string]
    doctor.post("/language", data={"lang": "zh_Hans_CN"})
    page = doctor.get("/today").get_data(as_text=True)
    assert "<span>诊室</span>" in page and "诊所" not in page


def test_a_tampered_select_is_answered_in_the_users_language(nurse):
    from test_patients import FORM

    nurse.post("/language", data={"lang": "zh_Hans_CN"})
    tampered = FORM | {"documents-0-kind": "forged", "sex": "Q"}
    response = nurse.post("/patients/new", data=tampered)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert page.count("选项无效。") >= 2
    assert "Not a valid choice" not in page


def test_the_fhir_link_says_what_it_is_in_each_language(doctor, make_patient):
    from clinic.demo import HUB_NAME
    from clinic.models import Organisation, Referral
    from clinic.models.referrals import HubService

    r = Referral.create_draft(
        user("doctor@jinzhou.demo"), make_patient(), to_org=Organisation.by_name(HUB_NAME),
        service=HubService.get(HubService.code == "cardiology"), reason="Chest pain",
    )  # fmt: skip
    assert "Export for hospital systems (FHIR)" in doctor.get(f"/referrals/{r.id}").text
    doctor.post("/language", data={"lang": "zh_Hans_CN"})
    assert "导出至医院系统（FHIR）</a>" in doctor.get(f"/referrals/{r.id}").text


def test_things_are_not_labelled_with_a_persons_name_in_chinese(admin, doctor):
    """姓名 is a person's name: an organisation, a service or a place has a 名稱."""
    admin.post("/language", data={"lang": "zh_Hant_HK"})
    organisations = admin.get("/admin/organisations").get_data(as_text=True)
    assert "<th>機構</th>" in organisations and "姓名" not in organisations
    from clinic.demo import HUB_NAME
    from clinic.models import Organisation

    hub_id = Organisation.by_name(HUB_NAME).id
    hub = admin.get(f"/admin/organisations/{hub_id}").get_data(as_text=True)
    assert "<th>服務</th>" in hub and "姓名" not in hub
    doctor.post("/language", data={"lang": "zh_Hans_CN"})
    places = doctor.get("/service-days/places").get_data(as_text=True)
    assert "地点名称" in places and "姓名" not in places


def test_a_page_finds_its_catalogue_once_and_a_forced_language_reads_its_own(
    app, doctor, monkeypatch
):
    found = []
    get_translations = flask_babel.Domain.get_translations
    monkeypatch.setattr(
        flask_babel.Domain, "get_translations", lambda d: found.append(1) or get_translations(d)
    )
    doctor.post("/language", data={"lang": "zh_Hant_HK"})
    found.clear()
    page = doctor.get("/today").get_data(as_text=True)
    assert "病人" in page and "Patient" not in page
    assert len(found) == 1
    with app.test_request_context(headers={"Accept-Language": "zh-HK"}):
        label = _l("Patient")
        assert (str(label), str(escape(label))) == ("病人", "病人")
        with flask_babel.force_locale("en"):
            assert (gettext("Patient"), str(label)) == ("Patient", "Patient")
        assert gettext("Patient") == "病人"
