"""The bilingual phrase library: two-person rule, versions that are never rewritten, pickers."""

import multiprocessing
import re
import threading

import pytest

from clinic.consultations.catalogue_forms import simplified_only
from clinic.consultations.demo_catalogue import PHRASES
from clinic.db import db
from clinic.models import (
    APPROVED,
    DRAFT,
    HUB,
    PHARMACIST,
    PHRASE_KINDS,
    SUPERSEDED,
    AuditEvent,
    Organisation,
    Phrase,
    User,
)
from clinic.workflow import Refused

from conftest import TEST_CONFIG, log_in, user

PHARMACIST_ONE, PHARMACIST_TWO = "pharmacist@hub.demo", "pharmacist2@hub.demo"
NEW = "/consultations/phrases/new"
TEXTS = {"text_en": "Take 3 tablets", "text_hant": "每次服用三粒", "text_hans": "每次服用3片"}


@pytest.fixture
def second_pharmacist(login):
    return login(PHARMACIST_TWO)


def write(writer_email=PHARMACIST_ONE, kind="dose", **texts) -> Phrase:
    texts = TEXTS | texts
    return Phrase.write(user(writer_email), kind, texts["text_en"], texts["text_hant"],
                        texts["text_hans"])  # fmt: skip


def approved(**texts) -> Phrase:
    phrase = write(**texts)
    phrase.approve(user(PHARMACIST_TWO))
    return Phrase.get_by_id(phrase.id)


def picked(client, kind: str, q: str = "") -> list[str]:
    """The English texts the picker offers."""
    page = client.get("/consultations/phrases/pick", query_string={"kind": kind, "q": q})
    return re.findall(r'data-text-en="([^"]*)"', page.get_data(as_text=True))


def state(phrase: Phrase) -> str:
    return Phrase.get_by_id(phrase.id).state


# ---- the rules, on the model --------------------------------------------------------------
def test_a_phrase_is_a_draft_until_a_second_pharmacist_approves_it(app, demo_data):
    with app.test_request_context():
        writer, second = user(PHARMACIST_ONE), user(PHARMACIST_TWO)
        phrase = write()
        assert phrase.state == DRAFT and phrase.lineage == phrase.id and phrase.version == 1
        with pytest.raises(Refused, match="not approved yet"):
            Phrase.usable_or_refuse(phrase.id, "dose")
        with pytest.raises(Refused, match="second pharmacist"):
            phrase.approve(writer)
        assert state(phrase) == DRAFT
        phrase.approve(second)
        usable = Phrase.usable_or_refuse(phrase.id, "dose")
        assert (usable.state, usable.approved_by.email) == (APPROVED, PHARMACIST_TWO)
        assert usable.text_in("zh_Hant_HK") == "每次服用三粒"
        assert usable.text_in("zh_Hans_CN") == "每次服用3片"
        assert usable.text_in("en") == "Take 3 tablets"


def test_a_changed_phrase_is_a_new_version_and_the_old_one_stays_until_approved(app, demo_data):
    with app.test_request_context():
        writer = user(PHARMACIST_ONE)
        first = approved()
        revised = first.revise(
            user(PHARMACIST_TWO), "Take three tablets", "每次服用三粒", "每次服用3片"
        )
        assert (revised.version, revised.state, revised.lineage) == (2, DRAFT, first.id)
        assert Phrase.usable_or_refuse(first.id, "dose").text_en == "Take 3 tablets"
        with pytest.raises(Refused, match="already waits"):
            first.revise(writer, "Take 3 tablets, please", "每次服用三粒", "每次服用3片")
        revised.approve(writer)
        old = Phrase.get_by_id(first.id)
        assert old.state == SUPERSEDED
        assert (old.text_en, old.version) == ("Take 3 tablets", 1)  # never rewritten
        with pytest.raises(Refused, match="newer approved version"):
            Phrase.usable_or_refuse(first.id, "dose")
        assert Phrase.usable_or_refuse(revised.id, "dose").text_en == "Take three tablets"
        with pytest.raises(Refused, match="Only the approved version"):
            old.revise(writer, "Take 3 tablets!", "每次服用三粒", "每次服用3片")
        assert [p.version for p in Phrase.usable("dose").where(Phrase.lineage == first.id)] == [2]


def test_a_phrase_sent_by_hand_is_refused_unless_approved_current_and_of_the_kind(app, demo_data):
    with app.test_request_context():
        phrase = approved()
        other_hub = Organisation.create(name="Other Hub Hospital", kind=HUB)
        for phrase_id, kind, hub, reason in [
            ("999999", "dose", None, "Unknown phrase"),
            ("abc", "dose", None, "Unknown phrase"),
            ("", "dose", None, "Unknown phrase"),
            (str(phrase.id), "warning", None, "not a Warning phrase"),
            (phrase.id, "dose", other_hub, "Unknown phrase"),
        ]:
            with pytest.raises(Refused, match=reason):
                Phrase.usable_or_refuse(phrase_id, kind, hub=hub)
        assert Phrase.usable_or_refuse(str(phrase.id), "dose", hub=phrase.hub).id == phrase.id


def test_an_administrator_or_another_hubs_pharmacist_cannot_approve(app, demo_data):
    with app.test_request_context():
        phrase = write()
        other = Organisation.create(name="Other Hub Hospital", kind=HUB)
        outsider = User.create_with_password(
            "pw-other-hub", email="p@other.demo", name="Other", role=PHARMACIST, organisation=other
        )
        for person in (user("admin@hub.demo"), outsider):
            with pytest.raises(Refused, match="Only a hub pharmacist"):
                phrase.approve(person)
        assert state(phrase) == DRAFT


# ---- through the pages --------------------------------------------------------------------
def test_a_pharmacist_writes_a_phrase_once_and_a_second_one_approves_it(
    pharmacist, second_pharmacist
):
    page = pharmacist.get(NEW).get_data(as_text=True)
    key = re.search(r'name="submission_key"[^>]*value="([^"]+)"', page).group(1)
    data = {"kind": "dose", "submission_key": key, **TEXTS}
    first, again = pharmacist.post(NEW, data=data), pharmacist.post(NEW, data=data)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    phrase = Phrase.get(Phrase.text_en == "Take 3 tablets")
    assert Phrase.select().where(Phrase.text_en == "Take 3 tablets").count() == 1
    assert "Take 3 tablets" not in picked(pharmacist, "dose")  # a draft is not offered
    url = f"/consultations/phrases/{phrase.id}"
    own = pharmacist.get(url).get_data(as_text=True)
    assert "you wrote it" in own and "Approve this version" not in own
    refused = pharmacist.post(f"{url}/approve")
    assert refused.status_code == 409 and "you wrote it" in refused.get_data(as_text=True)
    assert state(phrase) == DRAFT
    assert "Approve this version" in second_pharmacist.get(url).get_data(as_text=True)
    assert second_pharmacist.post(f"{url}/approve").status_code == 303
    assert state(phrase) == APPROVED
    assert "Take 3 tablets" in picked(pharmacist, "dose")
    events = AuditEvent.select().where(
        AuditEvent.object_type == "phrase", AuditEvent.object_id == str(phrase.id)
    )
    actions = [e.action for e in events.order_by(AuditEvent.id)]
    assert actions == ["phrase_write", "phrase_approve"]


def test_an_approved_phrase_changed_on_its_page_is_a_new_draft_version(
    pharmacist, second_pharmacist
):
    first = approved()
    changed = TEXTS | {"text_en": "Take three tablets"}
    response = pharmacist.post(f"/consultations/phrases/{first.id}/revise", data=changed)
    assert response.status_code == 303
    revised = Phrase.get(Phrase.lineage == first.id, Phrase.version == 2)
    assert response.headers["Location"].endswith(f"/consultations/phrases/{revised.id}")
    assert revised.state == DRAFT and state(first) == APPROVED
    assert "Take 3 tablets" in picked(pharmacist, "dose")  # the approved one stays in use
    assert "Take three tablets" not in picked(pharmacist, "dose")
    page = pharmacist.get(f"/consultations/phrases/{first.id}").get_data(as_text=True)
    assert "Change this phrase" not in page  # a new version already waits
    assert second_pharmacist.post(f"/consultations/phrases/{revised.id}/approve").status_code == 303
    assert state(first) == SUPERSEDED and Phrase.get_by_id(first.id).text_en == "Take 3 tablets"
    offered = picked(pharmacist, "dose")
    assert "Take three tablets" in offered and "Take 3 tablets" not in offered
    history = pharmacist.get(f"/consultations/phrases/{first.id}").get_data(as_text=True)
    assert "Superseded" in history and "Take three tablets" in history


def test_a_change_that_changes_nothing_is_refused(pharmacist):
    first = approved()
    response = pharmacist.post(f"/consultations/phrases/{first.id}/revise", data=TEXTS)
    assert response.status_code == 422
    assert "Nothing changed" in response.get_data(as_text=True)
    assert Phrase.select().where(Phrase.lineage == first.id).count() == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"kind": ""}, "Choose the kind of phrase."),
        ({"kind": "poison"}, "Choose the kind of phrase."),
        ({"text_en": ""}, "Give the English text."),
        ({"text_hant": "  "}, "Give the Traditional Chinese text."),
        ({"text_hans": ""}, "Give the Simplified Chinese text."),
        ({"text_en": "x" * 201}, "At most 200 characters."),
        ({"text_hant": "粒" * 201}, "At most 200 characters."),
        ({"text_hans": "每次服用3片，飯后"}, "Traditional characters in the Simplified text: 飯"),
    ],
)
def test_bad_input_is_refused_with_422_keeping_what_was_typed(pharmacist, fields, message):
    data = {"kind": "dose", **TEXTS, **fields}
    response = pharmacist.post(NEW, data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and message in page
    kept = next(v for k, v in data.items() if k.startswith("text_") and k not in fields)
    assert f'value="{kept}"' in page
    assert not Phrase.select().where(Phrase.text_hant == data["text_hant"]).exists()


def test_over_long_text_of_a_new_version_is_refused_with_the_limit(pharmacist):
    first = approved()
    data = TEXTS | {"text_en": "Take it " * 30}
    response = pharmacist.post(f"/consultations/phrases/{first.id}/revise", data=data)
    assert response.status_code == 422
    assert "At most 200 characters." in response.get_data(as_text=True)
    assert Phrase.select().where(Phrase.lineage == first.id).count() == 1


@pytest.mark.parametrize(
    "language, required, not_simplified",
    [
        ("zh_Hant_HK", "請填寫英文內容。", "簡體內容有繁體字：飯"),
        ("zh_Hans_CN", "请填写英文内容。", "简体内容有繁体字：飯"),
    ],
)
def test_messages_are_in_the_users_language(pharmacist, language, required, not_simplified):
    pharmacist.post("/language", data={"lang": language})
    data = {"kind": "dose", **TEXTS, "text_en": "", "text_hans": "饭后飯"}
    page = pharmacist.post(NEW, data=data).get_data(as_text=True)
    assert required in page and not_simplified in page


def test_only_hub_pharmacists_use_the_library(login):
    phrase = Phrase.select().first()
    for email in ("admin@hub.demo", "doctor@jinzhou.demo", "coordinator@hub.demo"):
        client = login(email)
        for url in ("/consultations/phrases", "/consultations/phrases/pick?kind=dose",
                    f"/consultations/phrases/{phrase.id}"):  # fmt: skip
            assert client.get(url).status_code == 403, (email, url)
        assert client.post(f"/consultations/phrases/{phrase.id}/approve").status_code == 403


def test_another_hubs_pharmacist_reaches_no_phrase(app, client, demo_data):
    other = Organisation.create(name="Other Hub Hospital", kind=HUB)
    with app.app_context():
        User.create_with_password(
            "other-hub-pw", email="pharmacist@other.demo", name="Other", role=PHARMACIST,
            organisation=other,
        )  # fmt: skip
    draft = Phrase.get(Phrase.state == DRAFT)
    intruder = log_in(client, "pharmacist@other.demo", "other-hub-pw")
    assert intruder.get(f"/consultations/phrases/{draft.id}").status_code == 404
    assert intruder.post(f"/consultations/phrases/{draft.id}/approve").status_code == 404
    assert intruder.post(f"/consultations/phrases/{draft.id}/revise", data=TEXTS).status_code == 404
    assert picked(intruder, "dose") == []
    assert state(draft) == DRAFT


def test_the_picker_offers_approved_phrases_of_a_kind_in_three_scripts(pharmacist):
    page = pharmacist.get(
        "/consultations/phrases/pick?kind=timing&q=飯後&name=lines-0-timing&selected=0"
    ).get_data(as_text=True)
    after_food = Phrase.get(Phrase.text_en == "After food", Phrase.state == APPROVED)
    assert f'name="lines-0-timing" value="{after_food.id}"' in page
    assert 'id="phrase-pick-lines-0-timing"' in page
    assert "After food" in page and "飯後服用" in page and "饭后服用" in page
    assert picked(pharmacist, "timing", "饭后") == ["After food"]  # either script
    assert picked(pharmacist, "timing", "BEDTIME") == ["At bedtime"]  # any case
    assert picked(pharmacist, "nonsense") == [] and picked(pharmacist, "dose", "zzz") == []
    bad_name = pharmacist.get('/consultations/phrases/pick?kind=dose&name="><script>')
    assert "<script>" not in bad_name.get_data(as_text=True)


def test_drafts_waiting_on_a_pharmacist_are_counted_in_the_navigation(login):
    # The demo: one new version by the first pharmacist, one draft by the second.
    for email in (PHARMACIST_ONE, PHARMACIST_TWO):
        page = login(email).get("/today").get_data(as_text=True)
        assert re.search(r'id="badge-drug_catalogue"[^>]*>1<', page), email


# ---- the demo ------------------------------------------------------------------------------
def test_the_demo_library_has_sixty_approved_phrases_of_every_kind(demo_data):
    usable = list(Phrase.usable())
    assert len(usable) >= 60
    assert {p.kind for p in usable} == set(PHRASE_KINDS)
    assert all(p.written_by_id != p.approved_by_id for p in usable)
    tablets = [p for p in usable if "tablet" in p.text_en]
    assert tablets and all("粒" in p.text_hant and "片" in p.text_hans for p in tablets)


@pytest.mark.parametrize("kind", PHRASES)
def test_the_demo_simplified_texts_have_no_traditional_characters(kind):
    class Field:
        pass

    for _en, _hant, hans in PHRASES[kind]:
        field = Field()
        field.data = hans
        simplified_only(None, field)


# ---- two pharmacists at once --------------------------------------------------------------
def _approve(approver_id: int, phrase_id: int) -> str:
    try:
        Phrase.get_by_id(phrase_id).approve(User.get_by_id(approver_id))
    except Refused:
        return "refused"
    return "approved"


def _approve_in_process(url, approver_id, phrase_id, barrier, outcomes):
    """One pharmacist on their own server: a separate process, its own app and connection."""
    from clinic import create_app

    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    with app.app_context():
        barrier.wait()
        outcomes.append(_approve(approver_id, phrase_id))
        db.close()


def test_two_pharmacists_approving_one_version_at_once_approve_it_once(app, demo_data):
    """Threads on SQLite (one process by design); separate processes on PostgreSQL."""
    hub = Organisation.by_name("Nansha Hub Hospital")
    with app.app_context():
        third = User.create_with_password(
            "pw-third", email="pharmacist3@hub.demo", name="Third", role=PHARMACIST,
            organisation=hub,
        )  # fmt: skip
    approvers = [user(PHARMACIST_ONE).id, user(PHARMACIST_TWO).id]
    for round_ in range(3):
        phrase = write("pharmacist3@hub.demo", text_en=f"Take {round_ + 3} tablets")
        url = app.config["DATABASE_URL"]
        if url.startswith("sqlite"):
            barrier, outcomes = threading.Barrier(2), []

            def run(approver_id, phrase_id=phrase.id, barrier=barrier, outcomes=outcomes):
                with app.app_context():
                    barrier.wait()
                    outcomes.append(_approve(approver_id, phrase_id))
                    db.close()

            workers = [threading.Thread(target=run, args=(a,)) for a in approvers]
        else:
            db.close()
            context = multiprocessing.get_context("spawn")
            manager = context.Manager()
            barrier, outcomes = manager.Barrier(2), manager.list()
            workers = [
                context.Process(
                    target=_approve_in_process, args=(url, a, phrase.id, barrier, outcomes)
                )
                for a in approvers
            ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        outcomes = sorted(outcomes)
        if not url.startswith("sqlite"):
            manager.shutdown()
        assert outcomes == ["approved", "refused"], outcomes
        fresh = Phrase.get_by_id(phrase.id)
        assert fresh.state == APPROVED and fresh.approved_by_id in approvers
        approvals = AuditEvent.select().where(
            AuditEvent.action == "phrase_approve", AuditEvent.object_id == str(phrase.id)
        )
        assert approvals.count() == 1
    assert third.id


def test_two_pharmacists_changing_one_phrase_at_once_make_one_new_version(app, demo_data):
    first = approved()
    barrier, outcomes = threading.Barrier(2), []

    def revise(email: str, text: str):
        with app.test_request_context():
            phrase = Phrase.get_by_id(first.id)
            barrier.wait()
            try:
                phrase.revise(user(email), text, "每次服用三粒", "每次服用3片")
                outcomes.append("revised")
            except Refused:
                outcomes.append("refused")
            finally:
                db.close()

    workers = [
        threading.Thread(target=revise, args=(PHARMACIST_ONE, "Take three tablets")),
        threading.Thread(target=revise, args=(PHARMACIST_TWO, "Take 3 tablets a time")),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(outcomes) == ["refused", "revised"], outcomes
    versions = Phrase.select().where(Phrase.lineage == first.id)
    assert sorted(p.version for p in versions) == [1, 2]
    assert state(first) == APPROVED


def test_only_a_pharmacist_of_the_hub_writes_or_changes_its_phrases(app, demo_data):
    with app.test_request_context():
        first = approved()
        for email in ("admin@hub.demo", "doctor@jinzhou.demo"):
            with pytest.raises(Refused, match="Only a pharmacist of the hub"):
                write(email)
            with pytest.raises(Refused, match="Only a pharmacist of the hub"):
                first.revise(user(email), "Take three", "每次服用三粒", "每次服用3片")
