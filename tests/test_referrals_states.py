"""The referral state machine: every legal move, illegal moves refused, real concurrency."""

import datetime as dt
import threading

import pytest
from peewee import IntegrityError

from clinic.db import db, utcnow
from clinic.models import Consent, IdentityDocument, Organisation, Patient
from clinic.models.referrals import (
    DOWN,
    GREEN,
    URGENT,
    Conflict,
    HubService,
    Referral,
    ReferralEvent,
    Refused,
)

from conftest import user

HUB = "Nansha Hub Hospital"


@pytest.fixture
def people(demo_data):
    return {
        role: user(email)
        for role, email in (
            ("doctor", "doctor@jinzhou.demo"),
            ("nurse", "nurse@jinzhou.demo"),
            ("other_doctor", "doctor@huangge.demo"),
            ("coordinator", "coordinator@hub.demo"),
            ("specialist", "specialist@hub.demo"),
            ("pharmacist", "pharmacist@hub.demo"),
        )
    }


@pytest.fixture
def referral(people, make_patient):
    """A fresh draft up-referral from the Jinzhou doctor to the hub's cardiology."""

    def make(priority=URGENT, service="cardiology"):
        patient = make_patient(chinese_name="黃小明")
        hub = Organisation.by_name(HUB)
        return Referral.create_draft(
            people["doctor"], patient, to_org=hub, priority=priority, reason="Chest pain",
            service=HubService.get(HubService.hub == hub, HubService.code == service),
        )  # fmt: skip

    return make


def actions(referral):
    return [(e.action, e.from_state, e.to_state) for e in referral.timeline()]


def test_full_up_referral_path_writes_one_event_per_move(people, referral):
    r = referral()
    assert (r.state, r.owner_id) == ("draft", r.from_org_id)
    r.submit(people["doctor"])
    assert (r.state, r.owner_id) == ("submitted", r.to_org_id)
    assert r.due_by - utcnow() == pytest.approx(dt.timedelta(hours=24), abs=dt.timedelta(1 / 24))
    r.request_info(people["coordinator"], "ECG please?")
    assert (r.state, r.owner_id) == ("info_requested", r.from_org_id)
    r.answer(people["doctor"], "ECG: ST depression V4-V6")
    r.accept(people["coordinator"], utcnow() + dt.timedelta(days=1), "Cardiology clinic 3/F")
    assert (r.state, r.owner_id) == ("accepted", r.to_org_id)
    r.request_info(people["specialist"], "Any echo?")
    r.answer(people["doctor"], "None done")
    r = Referral.get_by_id(r.id)
    r.accept(people["coordinator"], utcnow() + dt.timedelta(days=2), "Cardiology clinic 3/F")
    r.back_referral(people["specialist"], br_diagnosis="Stable angina", br_treatment="PCI")
    assert (r.state, r.owner_id, r.br_signed_by_id) == (
        "completed",
        r.from_org_id,
        people["specialist"].id,
    )
    r.acknowledge(people["doctor"])
    stored = Referral.get_by_id(r.id)
    assert (stored.state, stored.owner_id, stored.due_by) == ("closed", None, None)
    assert actions(stored) == [
        ("create", None, "draft"),
        ("submit", "draft", "submitted"),
        ("request_info", "submitted", "info_requested"),
        ("answer", "info_requested", "submitted"),
        ("accept", "submitted", "accepted"),
        ("request_info", "accepted", "info_requested"),
        ("answer", "info_requested", "submitted"),
        ("accept", "submitted", "accepted"),
        ("back_referral", "accepted", "completed"),
        ("acknowledge", "completed", "closed"),
    ]


def test_decline_needs_a_reason_and_names_the_clinician(people, referral):
    r = referral()
    r.submit(people["doctor"])
    with pytest.raises(Refused, match="reason"):
        r.decline(people["coordinator"], "  ")
    r.decline(people["coordinator"], "Not a cardiology problem")
    stored = Referral.get_by_id(r.id)
    assert (stored.state, stored.decided_by_id) == ("declined", people["coordinator"].id)
    # Not open, but it waits on the referring clinic until its doctor has read it.
    assert not stored.is_open and stored.owner_id == stored.from_org_id
    assert stored.note_decline_seen(people["doctor"])
    assert Referral.get_by_id(r.id).owner_id is None


@pytest.mark.parametrize("start", ["submitted", "info_requested"])
def test_doctor_cancels_with_a_reason(people, referral, start):
    r = referral()
    r.submit(people["doctor"])
    if start == "info_requested":
        r.request_info(people["coordinator"], "?")
    r.cancel(people["doctor"], "Patient went to A&E")
    assert Referral.get_by_id(r.id).state == "cancelled"


def test_no_show_after_acceptance(people, referral):
    r = referral()
    r.submit(people["doctor"])
    r.accept(people["coordinator"], utcnow(), "Room 1")
    r.no_show(people["specialist"])
    assert Referral.get_by_id(r.id).state == "no_show"


ILLEGAL = [
    # (moves to get there, illegal move, who)
    ([], "accept", "coordinator"),
    ([], "acknowledge", "doctor"),
    (["submit"], "submit", "doctor"),
    (["submit"], "acknowledge", "doctor"),
    (["submit"], "back_referral", "specialist"),
    (["submit"], "no_show", "coordinator"),
    (["submit", "accept"], "accept", "coordinator"),
    (["submit", "accept"], "cancel", "doctor"),
    (["submit", "decline"], "accept", "coordinator"),
    (["submit", "decline"], "request_info", "coordinator"),
    (["submit", "cancel"], "submit", "doctor"),
]


def _do(r, move, people):
    args = {
        "submit": ("doctor", ()),
        "accept": ("coordinator", (utcnow(), "Room 1")),
        "decline": ("coordinator", ("No",)),
        "cancel": ("doctor", ("Changed plan",)),
        "request_info": ("coordinator", ("?",)),
        "acknowledge": ("doctor", ()),
        "no_show": ("coordinator", ()),
        "back_referral": ("specialist", ()),
    }
    who, extra = args[move]
    return who, extra


@pytest.mark.parametrize(("before", "move", "who"), ILLEGAL)
def test_illegal_moves_are_refused_and_change_nothing(people, referral, before, move, who):
    r = referral()
    for step in before:
        actor, extra = _do(r, step, people)
        getattr(r, step)(people[actor], *extra)
    state, events = r.state, ReferralEvent.select().where(ReferralEvent.referral == r).count()
    _, extra = _do(r, move, people)
    kwargs = {"br_diagnosis": "x"} if move == "back_referral" else {}
    with pytest.raises(Refused, match="Not possible"):
        getattr(r, move)(people[who], *extra, **kwargs)
    assert Referral.get_by_id(r.id).state == state
    assert ReferralEvent.select().where(ReferralEvent.referral == r).count() == events


@pytest.mark.parametrize(
    ("move", "who"),
    [
        ("submit", "nurse"),
        ("submit", "other_doctor"),
        ("submit", "coordinator"),
    ],
)
def test_only_the_sending_doctor_submits(people, referral, move, who):
    r = referral()
    with pytest.raises(Refused):
        r.submit(people[who])
    assert Referral.get_by_id(r.id).state == "draft"


def test_hub_moves_need_the_right_role_and_hub(people, referral):
    r = referral()
    r.submit(people["doctor"])
    for who in ("pharmacist", "specialist", "doctor"):
        with pytest.raises(Refused):
            r.accept(people[who], utcnow(), "Room 1")
    r.accept(people["coordinator"], utcnow(), "Room 1")
    for who in ("coordinator", "doctor"):
        with pytest.raises(Refused):
            r.back_referral(people[who], br_diagnosis="x")
    with pytest.raises(Refused):
        r.back_referral(people["specialist"], br_diagnosis="")
    r.back_referral(people["specialist"], br_diagnosis="x")
    for who in ("nurse", "other_doctor", "specialist"):
        with pytest.raises(Refused):
            r.acknowledge(people[who])


def test_a_stale_second_move_loses_and_sees_the_current_state(people, referral):
    r = referral()
    r.submit(people["doctor"])
    mine, theirs = Referral.get_by_id(r.id), Referral.get_by_id(r.id)
    theirs.decline(people["coordinator"], "Full")
    with pytest.raises(Conflict, match="Declined"):
        mine.accept(people["coordinator"], utcnow(), "Room 1")
    assert mine.state == "declined"
    assert [a for a, *_ in actions(r)].count("accept") == 0


def test_cross_border_service_needs_a_live_consent_at_submission(people, referral):
    r = referral(service="crossborder")
    with pytest.raises(Refused, match="consent"):
        r.submit(people["doctor"])
    consent = Consent.create(patient=r.patient, scope="cross_border", recorded_by=people["doctor"])
    Referral.update(consent=consent).where(Referral.id == r.id).execute()
    Consent.update(withdrawn_at=utcnow()).where(Consent.id == consent.id).execute()
    r = Referral.get_by_id(r.id)
    with pytest.raises(Refused, match="consent"):
        r.submit(people["doctor"])
    fresh = Consent.create(patient=r.patient, scope="cross_border", recorded_by=people["doctor"])
    Referral.update(consent=fresh).where(Referral.id == r.id).execute()
    r = Referral.get_by_id(r.id)
    r.submit(people["doctor"])
    assert r.state == "submitted"


def test_overdue_referrals_sort_first_then_priority(people, referral):
    routine = referral(priority="routine")
    green = referral(priority=GREEN)
    late = referral(priority="routine")
    for r in (routine, green, late):
        r.submit(people["doctor"])
    Referral.update(due_by=utcnow() - dt.timedelta(minutes=5)).where(
        Referral.id == late.id
    ).execute()
    mine = (routine.id, green.id, late.id)
    hub_list = [r.id for r in Referral.listing(people["coordinator"]) if r.id in mine]
    assert hub_list == [late.id, green.id, routine.id]
    assert Referral.get_by_id(late.id).is_overdue


def test_the_timeline_is_append_only(people, referral):
    r = referral()
    event = ReferralEvent.get(ReferralEvent.referral == r)
    with pytest.raises(Exception, match="append-only"), db.atomic():
        ReferralEvent.update(note="rewritten").where(ReferralEvent.id == event.id).execute()


def _down_referral(people, patient, clinic_name="Huangge Family-Doctor Clinic"):
    down = Referral.create_draft(
        people["specialist"], patient, direction=DOWN, to_org=Organisation.by_name(clinic_name),
        reason="Community follow-up",
    )  # fmt: skip
    down.submit(people["specialist"])
    return down


def test_down_referral_accepted_creates_one_patient_with_copied_documents(people, make_patient):
    patient = make_patient(documents=[("hkid", "X3546700")], allergies="Penicillin")
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    before = Patient.select().where(Patient.clinic == huangge).count()
    down = _down_referral(people, patient)
    assert down.owner.name == "Huangge Family-Doctor Clinic"
    with pytest.raises(Refused):
        down.accept_down(people["doctor"])  # Jinzhou is not the receiving clinic
    registered = down.accept_down(people["other_doctor"])
    assert registered.clinic.name == "Huangge Family-Doctor Clinic"
    assert registered.id != patient.id
    assert (registered.chinese_name, registered.allergies) == ("陳大文", "Penicillin")
    assert [d.number for d in registered.documents] == ["X3546700"]
    again = _down_referral(people, patient)
    assert again.accept_down(people["other_doctor"]).id == registered.id
    assert Patient.select().where(Patient.clinic == huangge).count() == before + 1


def test_down_referral_links_to_the_patient_the_clinic_already_has(people, make_patient):
    at_hub = make_patient(documents=[("mo_id", "71234568")])
    existing = make_patient(
        clinic_name="Huangge Family-Doctor Clinic", documents=[("mo_id", "71234568")]
    )
    down = _down_referral(people, at_hub)
    assert down.accept_down(people["other_doctor"]).id == existing.id
    assert Referral.get_by_id(down.id).clinic_patient_id == existing.id
    assert IdentityDocument.select().where(IdentityDocument.identity_key == "71234568").count() == 2


def test_down_referral_can_be_declined_by_the_clinic(people, make_patient):
    down = _down_referral(people, make_patient())
    down.decline(people["other_doctor"], "Outside our district")
    assert Referral.get_by_id(down.id).state == "declined"


def _race(app, referral_id, people, move, threads=12):
    """`threads` threads, each with its own connection, try the same move at the same moment."""
    barrier = threading.Barrier(threads)
    outcomes = []

    def attempt():
        with app.app_context():
            try:
                r = Referral.get_by_id(referral_id)
                barrier.wait()
                move(r)
                outcomes.append("won")
            except Conflict:
                outcomes.append("lost")
            except Exception as error:
                outcomes.append(repr(error))
            finally:
                db.close()

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return outcomes


def test_many_coordinators_accepting_at_once_exactly_one_wins(app, people, referral):
    r = referral()
    r.submit(people["doctor"])
    coordinator = people["coordinator"]
    when = utcnow() + dt.timedelta(days=1)
    outcomes = _race(app, r.id, people, lambda mine: mine.accept(coordinator, when, "Room 1"))
    assert sorted(outcomes) == ["lost"] * 11 + ["won"], outcomes
    accepted = ReferralEvent.select().where(
        ReferralEvent.referral == r.id, ReferralEvent.action == "accept"
    )
    assert accepted.count() == 1
    assert Referral.get_by_id(r.id).state == "accepted"


def test_accept_racing_decline_leaves_one_consistent_outcome(app, people, referral):
    r = referral()
    r.submit(people["doctor"])
    coordinator = people["coordinator"]
    counter = iter(range(100))

    def move(mine):
        if next(counter) % 2:
            mine.decline(coordinator, "Full")
        else:
            mine.accept(coordinator, utcnow(), "Room 1")

    outcomes = _race(app, r.id, people, move, threads=10)
    assert outcomes.count("won") == 1, outcomes
    final = Referral.get_by_id(r.id)
    decisions = [a for a, *_ in actions(final) if a in ("accept", "decline")]
    assert decisions == ["accept" if final.state == "accepted" else "decline"]


def _register_while_accepting(app, people, down, clinic, hkid) -> list[str]:
    """A desk registers the person at `clinic` while the down-referral is accepted there."""
    barrier, errors = threading.Barrier(2), []

    def desk():
        fields = {"sex": "M", "date_of_birth": dt.date(1960, 5, 17), "residency": "hk"}
        document = {"kind": "hkid", "number": hkid, "identity_key": hkid}
        with app.app_context():
            try:
                barrier.wait()
                Patient.register(clinic.id, people["other_doctor"], fields, [document])
            except IntegrityError:
                pass  # the form says "already registered" and links to the record: expected
            finally:
                db.close()

    def accept():
        with app.app_context():
            try:
                barrier.wait()
                Referral.get_by_id(down.id).accept_down(people["other_doctor"])
            except Exception as error:
                errors.append(repr(error))
            finally:
                db.close()

    threads = [threading.Thread(target=desk), threading.Thread(target=accept)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_a_desk_registering_the_same_person_while_a_down_referral_is_accepted(
    app, people, make_patient
):
    """Whichever comes first, the clinic ends with one record of the person and no error."""
    huangge = Organisation.by_name("Huangge Family-Doctor Clinic")
    for round_ in range(8):
        hkid = f"Z{round_:06d}0"
        down = _down_referral(people, make_patient(documents=[("hkid", hkid)]))
        assert _register_while_accepting(app, people, down, huangge, hkid) == []
        holders = IdentityDocument.select().where(
            IdentityDocument.clinic == huangge, IdentityDocument.identity_key == hkid
        )
        assert holders.count() == 1
        assert Referral.get_by_id(down.id).clinic_patient_id == holders.get().patient_id
