"""Per-request work done once a process: statements compiled once per shape (`compiled`),
aliases whose field classes peewee makes once (`alias`), with every answer still the current
user's and the clock's."""

import datetime as dt
import re

import peewee
import pytest

from clinic import domains
from clinic.db import AtRun, Given, compiled, compiled_rows
from clinic.models import Organisation, Patient, Referral
from clinic.rows import same_rows

from conftest import user

NAV_POLL = re.compile(r'id="nav-counts"[^>]*hx-get="([^"]+)"')


def test_a_compiled_statement_reads_the_clock_on_every_run(not_testing):
    times = iter([dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)])
    built = []

    def build():
        built.append(1)
        return Referral.select(Referral.id).where(Referral.updated_at >= AtRun(next, times))

    with not_testing.app_context():
        first = compiled(("clock",), build)
        second = compiled(("clock",), build)
    assert len(built) == 1
    assert first[0] == second[0]
    converted = Referral.updated_at.db_value
    assert first[1] == [converted(dt.datetime(2026, 1, 1))]
    assert second[1] == [converted(dt.datetime(2026, 1, 2))]


def test_a_given_value_is_bound_on_each_run_of_one_statement(not_testing):
    built = []

    def build():
        built.append(1)
        return Referral.select(Referral.id).where(Referral.patient == Given("patient", 0))

    with not_testing.app_context():
        first = compiled(("given",), build, patient=7)
        second = compiled(("given",), build, patient=8)
    assert len(built) == 1
    assert (first[0], first[1], second[1]) == (second[0], [7], [8])


def test_a_statement_built_from_more_than_its_key_fails_under_testing(app):
    organisations = iter([1, 2])

    def build():
        return Referral.select(Referral.id).where(Referral.to_org == next(organisations))

    with app.app_context():
        compiled(("too-small-key",), build)
        with pytest.raises(AssertionError, match="built from more than its key"):
            compiled(("too-small-key",), build)


def test_nav_counts_are_compiled_once_a_user_and_stay_each_users_own(
    not_testing, login, monkeypatch
):
    built = []
    statement = domains._nav_counts_statement
    monkeypatch.setattr(
        domains, "_nav_counts_statement", lambda u: built.append(u.id) or statement(u)
    )
    emails = ["doctor@jinzhou.demo", "coordinator@hub.demo", "nurse@jinzhou.demo"]
    clients = {email: login(email) for email in emails}
    versions = {}
    for _ in range(2):
        for email, client in clients.items():
            page = client.get("/today").get_data(as_text=True)
            versions[email] = NAV_POLL.search(page).group(1)
    assert sorted(built) == sorted(user(email).id for email in emails)
    with not_testing.app_context():
        for email in emails:
            reader = user(email)
            counts = [
                f"{d.name}{min(d.nav_count(reader).count(), domains.NAV_COUNT_MAX + 1)}"
                for d in domains.registered()
                if d.nav_count and d.nav_count(reader) is not None
            ]
            assert versions[email].endswith("v=" + ".".join(counts)), email


def test_a_list_page_makes_no_field_classes_once_it_ran(coordinator, monkeypatch):
    coordinator.get("/referrals/")
    made = []
    create = peewee.FieldAlias.create.__func__
    monkeypatch.setattr(
        peewee.FieldAlias,
        "create",
        classmethod(lambda cls, *a: made.append(a) or create(cls, *a)),
    )
    assert coordinator.get("/referrals/").status_code == 200
    assert made == []


REFERRAL_LINK = re.compile(r'href="/referrals/(\d+)"')


@pytest.mark.parametrize("url", ["/today", "/referrals/", "/referrals/?state=open"])
def test_lists_from_kept_statements_show_each_organisations_own_rows(app, login, url):
    emails = ["doctor@jinzhou.demo", "nurse@jinzhou.demo", "coordinator@hub.demo"]
    clients = {email: login(email) for email in emails}
    fresh = {
        e: REFERRAL_LINK.findall(c.get(url).get_data(as_text=True)) for e, c in clients.items()
    }
    assert any(fresh.values())
    app.testing = False  # from here on, the statements kept above are run as they are
    try:
        for _ in range(2):
            for email, client in clients.items():
                page = client.get(url).get_data(as_text=True)
                assert REFERRAL_LINK.findall(page) == fresh[email], email
    finally:
        app.testing = True
    kept = [key for key in app.extensions["clinic.statements"] if key[0] != "nav_counts"]
    assert len(kept) == len(set(kept))


def test_a_kept_statement_maps_its_columns_once_and_still_makes_fresh_joined_rows(
    not_testing, coordinator, monkeypatch
):
    assert coordinator.get("/referrals/").status_code == 200
    mapped = []
    initialize = peewee.ModelCursorWrapper.initialize
    monkeypatch.setattr(
        peewee.ModelCursorWrapper, "initialize", lambda w: mapped.append(w) or initialize(w)
    )
    with not_testing.test_request_context():
        build = lambda: Referral.select(Referral, Patient).join(Patient).order_by(Referral.id)  # noqa: E731
        first = compiled_rows(("joined rows",), build)
        second = compiled_rows(("joined rows",), build)
    assert len(mapped) == 1
    assert [(r.id, r.patient.english_name, r.state) for r in second] == [
        (r.id, r.patient.english_name, r.state) for r in first
    ]
    assert first and all(
        a is not b and not b.dirty_fields for a, b in zip(first, second, strict=True)
    )


def test_kept_joined_rows_are_made_as_peewee_makes_them_without_its_descriptors(
    not_testing, demo_data, make_patient, monkeypatch
):
    doctor, hub = user("doctor@jinzhou.demo"), Organisation.by_name("Nansha Hub Hospital")
    with_service = Referral.create_draft(
        doctor, make_patient(), to_org=hub, service=hub.services.first(), priority="urgent",
        reason="Chest pain",
    )  # fmt: skip
    without = Referral.create_draft(
        doctor, make_patient(), to_org=hub, priority="routine", reason="Review"
    )
    build = lambda: Referral.for_rows(Referral.select()).order_by(Referral.id)  # noqa: E731
    with not_testing.test_request_context():
        compiled_rows(("rows as peewee's",), build)
        set_through_descriptors = []
        field_set = peewee.FieldAccessor.__set__
        monkeypatch.setattr(
            peewee.FieldAccessor,
            "__set__",
            lambda *a: set_through_descriptors.append(a[0]) or field_set(*a),
        )
        made = compiled_rows(("rows as peewee's",), build)
        monkeypatch.undo()
        expected = list(build())
    assert set_through_descriptors == []
    assert same_rows(made, expected)
    by_id = {r.id: r for r in made}
    assert by_id[with_service.id].service.id == with_service.service_id
    assert by_id[without.id].service is None and by_id[without.id].patient.english_name


def test_kept_search_statements_find_each_searchs_own_patients(not_testing, nurse, make_patient):
    make_patient(english_name="LEUNG, Ka Yan", chinese_name="梁家欣")
    make_patient(english_name="WONG, Siu Ming", chinese_name="王小明")
    hx = {"HX-Request": "true"}
    for _ in range(2):  # the second round runs the statements kept in the first
        for typed, found, not_found in [
            ("leung", "LEUNG, Ka Yan", "WONG, Siu Ming"),
            ("wong", "WONG, Siu Ming", "LEUNG, Ka Yan"),
            ("siu wong", "WONG, Siu Ming", "LEUNG, Ka Yan"),  # each word, any order
            ("王小", "WONG, Siu Ming", "LEUNG, Ka Yan"),
        ]:
            page = nurse.post("/patients/", data={"q": typed}, headers=hx).get_data(as_text=True)
            assert found in page and not_found not in page, typed
    kept = not_testing.extensions["clinic.statements"]
    assert sum(key[0] == "search ids" for key in kept) == 2  # one word; two words
