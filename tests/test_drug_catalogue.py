"""The hub's drug catalogue: found by any name in either script, kept by hub pharmacists and
administrators, searched by the hub's clinics; bad input kept and answered with 422."""

import re

import pytest

from clinic.consultations.demo_catalogue import DRUGS
from clinic.db import db, is_sqlite
from clinic.models import CLINIC, HUB, AuditEvent, Drug, Organisation, Phrase, User
from clinic.models.drugs import drug_search_tokens

from conftest import log_in, user

HUB_NAME = "Nansha Hub Hospital"
NEW = "/consultations/drugs/new"


def found(client, q: str) -> list[str]:
    """The generic names the as-you-type search offers for `q`."""
    page = client.get("/consultations/drugs/search", query_string={"q": q}).get_data(as_text=True)
    return re.findall(r'data-generic-name="([^"]*)"', page)


def drug(generic_name: str) -> Drug:
    return Drug.get(Drug.generic_name == generic_name)


def form(**fields) -> dict:
    data = {"generic_name": "Nifedipine", "brand_names": "Adalat", "name_hant": "硝苯地平",
            "name_hans": "硝苯地平", "hk_registered": "y", "mainland_marketed": "y",
            "active": "y"}  # fmt: skip
    return {key: value for key, value in (data | fields).items() if value is not None}


# ---- search -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed, generic",
    [
        ("阿司匹林", "Aspirin"),  # the mainland name finds the entry whose HK name is 阿士匹靈
        ("阿士匹靈", "Aspirin"),  # and the HK name
        ("阿士匹灵", "Aspirin"),  # the HK name typed in Simplified characters
        ("司匹林", "Aspirin"),  # from any character on
        ("對乙酰氨基酚", "Paracetamol"),  # the mainland name typed in Traditional characters
        ("扑热息痛", "Paracetamol"),  # the HK name typed in Simplified characters
        ("二甲雙胍", "Metformin"),
        ("二甲双胍", "Metformin"),
        ("asp", "Aspirin"),  # English prefix, any case
        ("PARA", "Paracetamol"),
        ("panadol", "Paracetamol"),  # a brand name
        ("Nurofen", "Ibuprofen"),  # the second brand of a list
        ("clav amox", "Amoxicillin and clavulanic acid"),  # words in any order
    ],
)
def test_a_drug_is_found_by_any_name_in_either_script(pharmacist, typed, generic):
    assert generic in found(pharmacist, typed)


def test_english_search_is_a_prefix_not_a_substring(pharmacist):
    assert "Aspirin" not in found(pharmacist, "pirin")
    assert found(pharmacist, "amox") == ["Amoxicillin", "Amoxicillin and clavulanic acid"]


def test_a_name_that_matches_nothing_is_kept_and_marked_not_in_the_catalogue(nurse):
    page = nurse.get("/consultations/drugs/search?q=Unobtainium 5mg").get_data(as_text=True)
    assert "Not in the catalogue" in page and "Unobtainium 5mg" in page
    assert "data-drug-id" not in page


def test_clinic_staff_search_their_hubs_catalogue_with_the_facts_to_prefill(nurse):
    page = nurse.get("/consultations/drugs/search?q=aspirin&name=drug_id").get_data(as_text=True)
    aspirin = drug("Aspirin")
    assert f'data-drug-id="{aspirin.id}"' in page and 'data-name-hans="阿司匹林"' in page
    assert 'data-hk-registered="1"' in page and 'data-gba-listed="0"' in page
    assert f'name="drug_id" value="{aspirin.id}"' in page
    assert "/edit" not in page  # clinic staff search, they do not keep the catalogue


def test_the_question_form_field_name_is_searched_too(doctor):
    page = doctor.get("/consultations/drugs/search?drug=ibup").get_data(as_text=True)
    assert 'data-generic-name="Ibuprofen"' in page


def test_an_inactive_drug_is_no_longer_offered(app, pharmacist):
    aspirin = drug("Aspirin")
    data = form(generic_name="Aspirin", brand_names="Cardiprin", name_hant="阿士匹靈",
                name_hans="阿司匹林", active=None)  # fmt: skip
    assert pharmacist.post(f"/consultations/drugs/{aspirin.id}/edit", data=data).status_code == 303
    assert not Drug.get_by_id(aspirin.id).active
    assert "Aspirin" not in found(pharmacist, "阿司匹林")
    assert "Aspirin" in pharmacist.get("/consultations/drugs?q=asp").get_data(as_text=True)


def test_another_hubs_catalogue_and_clinics_outside_the_alliance_find_nothing(app, demo_data):
    other = Organisation.create(name="Other Hub Hospital", kind=HUB)
    lone = Organisation.create(name="Lone Clinic", kind=CLINIC)
    lone.link_hub(other)
    with app.app_context():
        for email, role, organisation in (
            ("pharmacist@other.demo", "pharmacist", other),
            ("doctor@lone.demo", "doctor", lone),
        ):
            User.create_with_password(
                "other-pw", email=email, name="Other", role=role, organisation=organisation
            )
    assert found(log_in(app.test_client(), "doctor@lone.demo", "other-pw"), "aspirin") == []
    intruder = log_in(app.test_client(), "pharmacist@other.demo", "other-pw")
    assert found(intruder, "aspirin") == []
    aspirin = drug("Aspirin")
    before = AuditEvent.select().where(AuditEvent.action == "access_denied").count()
    assert intruder.get(f"/consultations/drugs/{aspirin.id}/edit").status_code == 404
    assert intruder.post(f"/consultations/drugs/{aspirin.id}/edit", data=form()).status_code == 404
    assert AuditEvent.select().where(AuditEvent.action == "access_denied").count() == before + 2
    assert Drug.get_by_id(aspirin.id).generic_name == "Aspirin"


@pytest.mark.parametrize("who", ["pharmacist@hub.demo", "nurse@jinzhou.demo", None])
def test_the_search_is_a_range_of_the_key_index(app, demo_data, who):
    """No full scan of the keys or the drugs, on either engine: a hub's catalogue, a clinic's
    hubs' catalogues, every hub's (no user: the past-answers library)."""
    with app.app_context():
        query = Drug.search("amox clav", user=user(who) if who else None)
        sql, params = query.sql()
        with db.atomic():
            if is_sqlite():
                rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
                lines = [row[-1] for row in rows]
            else:
                db.execute_sql("SET LOCAL enable_seqscan = off")  # a tiny table: as at scale
                lines = [row[0] for row in db.execute_sql(f"EXPLAIN {sql}", params).fetchall()]
        plan = " / ".join(lines)
        scans = [
            line
            for line in lines
            if (line.startswith("SCAN ") and "USING" not in line) or "Seq Scan" in line
        ]
        assert not scans, plan
        assert [d.generic_name for d in query] == ["Amoxicillin and clavulanic acid"]


def test_search_tokens_fold_chinese_and_upper_case_english():
    assert drug_search_tokens("  阿士匹靈 ") == ["阿士匹灵"]
    assert drug_search_tokens("vitamin b12") == ["VITAMIN", "B12"]
    assert drug_search_tokens("") == []


# ---- keeping the catalogue ----------------------------------------------------------------
def test_a_pharmacist_adds_a_drug_once_and_it_is_found_at_once(pharmacist):
    page = pharmacist.get(NEW).get_data(as_text=True)
    key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', page).group(1)
    data = form(submission_key=key, hk_reg_no=None)
    first = pharmacist.post(NEW, data=data)
    again = pharmacist.post(NEW, data=data)  # a double click
    assert first.status_code == again.status_code == 303
    assert Drug.select().where(Drug.generic_name == "Nifedipine").count() == 1
    nifedipine = drug("Nifedipine")
    assert nifedipine.hub.name == HUB_NAME and nifedipine.hk_reg_no is None
    assert found(pharmacist, "硝苯") == ["Nifedipine"] and found(pharmacist, "adal") == [
        "Nifedipine"
    ]
    audit = AuditEvent.get(AuditEvent.action == "drug_add", AuditEvent.object_id == nifedipine.id)
    assert audit.user.email == "pharmacist@hub.demo"


def test_a_hub_administrator_keeps_the_catalogue_too(admin):
    assert admin.post(NEW, data=form()).status_code == 303
    assert admin.get("/consultations/drugs").status_code == 200


@pytest.mark.parametrize("email", ["doctor@jinzhou.demo", "coordinator@hub.demo"])
def test_others_do_not_keep_the_catalogue(login, email):
    client = login(email)
    assert client.get("/consultations/drugs").status_code == 403
    assert client.post(NEW, data=form()).status_code == 403
    assert not Drug.select().where(Drug.generic_name == "Nifedipine").exists()


def test_a_changed_name_is_searched_by_its_new_keys_only(pharmacist):
    metformin = drug("Metformin")
    data = form(generic_name="Metformin", brand_names="Glucophage XR", name_hant="二甲雙胍",
                name_hans="二甲双胍")  # fmt: skip
    assert (
        pharmacist.post(f"/consultations/drugs/{metformin.id}/edit", data=data).status_code == 303
    )
    assert found(pharmacist, "xr") == ["Metformin"]
    data["brand_names"] = "Glucophage"
    pharmacist.post(f"/consultations/drugs/{metformin.id}/edit", data=data)
    assert found(pharmacist, "xr") == []
    assert AuditEvent.select().where(AuditEvent.action == "drug_change").count() == 2


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"generic_name": ""}, "generic_name", "Give the generic name."),
        ({"generic_name": "x" * 201}, "generic_name", "At most 200 characters."),
        ({"brand_names": "B" * 401}, "brand_names", "At most 400 characters."),
        ({"notes": "n" * 2001}, "notes", "At most 2000 characters."),
        ({"generic_name": "aspirin"}, "generic_name", "This drug is already in the catalogue."),
        ({"hk_registered": None, "hk_reg_no": "HK-00000"}, "hk_reg_no", "Registered in Hong Kong"),
        ({"hk_reg_no": "HK<12>"}, "hk_reg_no", "Letters, digits, spaces, dashes and slashes only."),
        (
            {"name_hans": "硝苯地平 藥"},
            "name_hans",
            "Traditional characters in the Simplified text: 藥",
        ),
    ],
)
def test_bad_input_is_refused_with_422_keeping_what_was_typed(pharmacist, fields, field, message):
    data = form(**fields)
    response = pharmacist.post(NEW, data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page
    assert f'id="{field}-error"' in page
    kept = data.get("brand_names", "")
    assert f'value="{kept}"' in page  # what was typed is still in the form
    assert not Drug.select().where(Drug.generic_name == data["generic_name"][:200]).count() > (
        1 if fields.get("generic_name") == "aspirin" else 0
    )


@pytest.mark.parametrize(
    "language, limit, required",
    [
        ("zh_Hant_HK", "最多 200 個字元", "請填寫通用名稱"),
        ("zh_Hans_CN", "最多 200 个字符", "请填写通用名称"),
    ],
)
def test_messages_are_in_the_users_language(pharmacist, language, limit, required):
    pharmacist.post("/language", data={"lang": language})
    long = pharmacist.post(NEW, data=form(generic_name="x" * 201)).get_data(as_text=True)
    assert limit in long
    empty = pharmacist.post(NEW, data=form(generic_name="")).get_data(as_text=True)
    assert required in empty


# ---- the demo ------------------------------------------------------------------------------
def test_the_demo_catalogue_has_thirty_common_drugs_in_three_scripts(demo_data):
    drugs = list(Drug.select())
    assert len(drugs) == len(DRUGS) >= 30
    assert all(d.generic_name and d.name_hant and d.name_hans for d in drugs)
    assert all(d.hk_reg_no is None for d in drugs)  # never made up
    assert {d.hub.name for d in drugs} == {HUB_NAME}


@pytest.mark.parametrize("language", ["zh_Hant_HK", "zh_Hans_CN"])
def test_the_catalogue_pages_are_fully_translated(app, pharmacist, language):
    from test_i18n import visible_english

    pharmacist.post("/language", data={"lang": language})
    phrase = Phrase.get(Phrase.state == "draft")
    for url in ("/consultations/drugs", "/consultations/drugs/new",
                f"/consultations/drugs/{drug('Aspirin').id}/edit", "/consultations/phrases",
                "/consultations/phrases/new", f"/consultations/phrases/{phrase.id}",
                f"/consultations/phrases/{phrase.lineage}",
                "/consultations/drugs/search?q=zzz"):  # fmt: skip
        page = pharmacist.get(url).get_data(as_text=True)
        assert visible_english(app, page) == set(), url


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh-Hant-HK", "zh-Hans-CN"])
def test_catalogue_pages_work_in_a_browser_without_serious_accessibility_violations(
    new_page, demo_data, lang
):
    from test_accessibility import check, choose

    page = new_page("pharmacist@hub.demo")
    choose(page, lang)
    found = []
    draft = Phrase.get(Phrase.state == "draft")
    for url in ("/consultations/drugs", "/consultations/drugs/new", "/consultations/phrases",
                "/consultations/phrases/new", f"/consultations/phrases/{draft.id}"):  # fmt: skip
        page.goto(url)
        found += check(page, lang, url)
    # As you type: the mainland name finds the entry kept under its Hong Kong name.
    page.goto("/consultations/drugs/new")
    page.locator("#generic_name").press_sequentially("阿司匹林")
    page.locator("#drug-matches li[data-generic-name='Aspirin']").wait_for()
    found += check(page, lang, "drug matches")
    # The picker: the approved phrases of a kind, in three scripts.
    page.goto("/consultations/phrases")
    page.locator("#pick-kind").select_option("timing")
    page.locator("#phrase-pick li[data-text-en='After food']").wait_for()
    assert "飯後服用" in page.locator("#phrase-pick").inner_text()
    found += check(page, lang, "phrase picker")
    # A refused phrase (422) keeps what was typed.
    page.goto("/consultations/phrases/new")
    page.locator("#text_en").fill("Take 3 tablets")
    page.locator("form.card button.primary").click()
    page.locator(".form-error").wait_for()
    assert page.locator("#text_en").input_value() == "Take 3 tablets"
    found += check(page, lang, "phrase refused")
    assert not found, "\n".join(found)


def test_two_keepers_editing_one_drug_lose_nothing(pharmacist, admin):
    metformin = drug("Metformin")
    url = f"/consultations/drugs/{metformin.id}/edit"
    shown = re.search(
        r'name="revision"[^>]*value="(\d+)"', pharmacist.get(url).get_data(as_text=True)
    )
    assert re.search(r'name="revision"[^>]*value="(\d+)"', admin.get(url).get_data(as_text=True))
    base = form(generic_name="Metformin", name_hant="二甲雙胍", name_hans="二甲双胍",
                revision=shown.group(1))  # fmt: skip
    assert admin.post(url, data=base | {"brand_names": "Glucophage"}).status_code == 303
    late = pharmacist.post(url, data=base | {"brand_names": "Glucophage XR"})
    page = late.get_data(as_text=True)
    assert late.status_code == 409 and "Someone else saved this drug meanwhile" in page
    assert 'value="Glucophage XR"' in page  # what this pharmacist typed is still there
    assert "Saved meanwhile" in page and Drug.get_by_id(metformin.id).brand_names == "Glucophage"
    fresh = re.search(r'name="revision"[^>]*value="(\d+)"', page).group(1)
    again = pharmacist.post(url, data=base | {"brand_names": "Glucophage XR", "revision": fresh})
    assert again.status_code == 303 and Drug.get_by_id(metformin.id).brand_names == "Glucophage XR"
    assert found(pharmacist, "xr") == ["Metformin"]
