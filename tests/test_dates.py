"""Dates nobody misreads: Hong Kong English, the zh formats, the organisation's local calendar."""

import datetime as dt
import re

import pytest
from flask import render_template_string
from flask_babel import format_date, format_datetime, format_time
from markupsafe import escape

from clinic.models import AuditEvent, Organisation, Referral
from clinic.models.referrals import HubService

from conftest import user

HUB = "Nansha Hub Hospital"
# 23:30 UTC on 1 December is 07:30 on 2 December in Hong Kong.
LATE_UTC = dt.datetime(2026, 12, 1, 23, 30)
# A 12-hour English clock ("8:27 PM"); a bare "PM" can occur inside a random token.
US_CLOCK = re.compile(r"\d:\d\d\s?[AP]M")


@pytest.fixture
def referral(make_patient):
    doctor = user("doctor@jinzhou.demo")
    patient = make_patient(date_of_birth=dt.date(1960, 5, 7))
    r = Referral.create_draft(
        doctor, patient, to_org=Organisation.by_name(HUB),
        service=HubService.get(HubService.code == "cardiology"), priority="urgent",
        reason="Chest pain",
    )  # fmt: skip
    r.submit(doctor)
    Referral.update(submitted_at=LATE_UTC).where(Referral.id == r.id).execute()
    return r


@pytest.mark.parametrize(
    ("lang", "shown"),
    [
        ("en", "2 Dec 2026 20:27"),
        ("zh_Hant_HK", "2/12/2026 下午8:27"),
        ("zh_Hans_CN", "2026/12/2 20:27"),
    ],
)
def test_times_are_hong_kong_english_and_the_zh_formats_stay(admin, lang, shown):
    AuditEvent.create(action="time_probe", at=dt.datetime(2026, 12, 2, 12, 27))
    admin.post("/language", data={"lang": lang})
    page = admin.get("/admin/audit?action=time_probe").get_data(as_text=True)
    assert shown in page.replace("\u2009", " ")
    assert "12/2/26" not in page and not US_CLOCK.search(page)


def test_dates_of_birth_read_day_month_year_in_english(doctor, make_patient):
    patient = make_patient(date_of_birth=dt.date(1960, 5, 12))
    page = doctor.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "12 May 1960" in page
    assert "May 12, 1960" not in page


def test_messages_carry_hong_kong_english_dates(app):
    from clinic.patients.identity import parse_cn_id

    with app.test_request_context():
        document = parse_cn_id("11010519491231002X", dt.date(1950, 1, 1))
        assert "31 Dec 1949" in str(document.warnings[0])


def test_the_referral_letter_prints_the_local_day_in_both_languages(doctor, referral):
    page = doctor.get(f"/referrals/{referral.id}/letter").get_data(as_text=True)
    assert '<span lang="en">2 Dec 2026</span> <span lang="zh-Hant-HK">2026年12月2日</span>' in page
    assert "1 Dec 2026" not in page and "2026-12-01" not in page
    assert '<span lang="en">7 May 1960</span>' in page


def test_the_back_referral_letter_prints_the_local_day(doctor, specialist, referral):
    Referral.update(
        state="completed", br_diagnosis="Stable angina", br_signed_at=LATE_UTC,
        br_signed_by=user("specialist@hub.demo"), br_follow_up_due=dt.date(2027, 1, 4),
    ).where(Referral.id == referral.id).execute()  # fmt: skip
    page = doctor.get(f"/referrals/{referral.id}/back-referral-letter").get_data(as_text=True)
    assert '<span lang="en">2 Dec 2026</span>' in page
    assert '<span lang="en">2 Dec 2026 07:30</span>' in page
    assert '<span lang="en">4 Jan 2027</span> <span lang="zh-Hant-HK">2027年1月4日</span>' in page
    assert "1 Dec 2026" not in page


NAMED = [None, "short", "medium", "long", "full"]
FILTERED = [  # (filter, Flask-Babel's function, value, formats)
    ("datetimeformat", format_datetime, LATE_UTC, [*NAMED, "d MMM y HH:mm"]),
    ("dateformat", format_date, LATE_UTC, [*NAMED, "d MMM y"]),
    ("dateformat", format_date, LATE_UTC.date(), [*NAMED, "EEEE d MMMM y"]),
    ("timeformat", format_time, LATE_UTC, [*NAMED, "HH:mm"]),
]


@pytest.mark.parametrize("accept", ["en", "zh-HK", "zh-CN"])
def test_the_date_filters_read_as_flask_babel_formats_them_in_each_language(not_testing, accept):
    template = "{%% for f in formats %%}{{ v|%s(f) }};{%% endfor %%}"
    with not_testing.test_request_context(headers={"Accept-Language": accept}):
        for name, babel_format, value, formats in FILTERED:
            shown = render_template_string(template % name, v=value, formats=formats)
            expected = "".join(f"{babel_format(value, f)};" for f in formats)
            assert shown == str(escape(expected)), (name, value)
            if accept == "en" and name == "datetimeformat":
                assert shown.startswith("2 Dec 2026 07:30;")
