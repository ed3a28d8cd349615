"""The referral worklists at scale: the order they keep, the columns that give it, the indexes
that read it, and polls that answer without counting every row."""

import datetime as dt
import re

import pytest

from clinic.db import db, is_sqlite, utcnow
from clinic.models import Organisation
from clinic.models.referrals import CLOSED_RANK, GREEN, ROUTINE, URGENT, HubService, Referral
from clinic.models.referrals import list_order as expected_order

from conftest import user

HUB = "Nansha Hub Hospital"
HX = {"HX-Request": "true"}
POLL = {"HX-Request": "true", "X-Clinic-Poll": "1"}


@pytest.fixture
def doctor_user(demo_data):
    return user("doctor@jinzhou.demo")


@pytest.fixture
def coordinator_user(demo_data):
    return user("coordinator@hub.demo")


@pytest.fixture
def write(doctor_user, make_patient):
    """write(priority) → a draft up-referral from the Jinzhou doctor to the hub."""

    def make(priority=URGENT):
        hub = Organisation.by_name(HUB)
        return Referral.create_draft(
            doctor_user, make_patient(), to_org=hub, priority=priority, reason="Chest pain",
            service=HubService.get(HubService.hub == hub, HubService.code == "cardiology"),
        )  # fmt: skip

    return make


def stored_order_is_right(referral: Referral) -> bool:
    row = Referral.get_by_id(referral.id)
    received = row.submitted_at or row.created_at
    wanted = expected_order(row.state, row.priority, row.owner_id, received)
    return {"list_rank": row.list_rank, "received_at": row.received_at} == wanted


def received_earlier(referral: Referral, hours: int) -> None:
    """As if the referral had been sent `hours` ago (its stored order moved with it)."""
    at = utcnow() - dt.timedelta(hours=hours)
    Referral.update(submitted_at=at, received_at=at).where(Referral.id == referral.id).execute()


def test_the_stored_order_follows_every_edit_and_move(doctor_user, coordinator_user, write):
    specialist = user("specialist@hub.demo")
    r = write(ROUTINE)
    assert stored_order_is_right(r) and Referral.get_by_id(r.id).list_rank == 2
    r.update_draft(doctor_user, priority=GREEN)
    assert stored_order_is_right(r) and Referral.get_by_id(r.id).list_rank == 0
    r.submit(doctor_user)
    fresh = Referral.get_by_id(r.id)
    assert stored_order_is_right(r) and fresh.received_at == fresh.submitted_at
    r.request_info(coordinator_user, "Which ECG?")
    assert stored_order_is_right(r)
    r.answer(doctor_user, "The one from Monday")
    r.accept(coordinator_user, utcnow() + dt.timedelta(days=1), "Room 3")
    assert stored_order_is_right(r)
    r.back_referral(specialist, br_diagnosis="Stable angina")
    assert stored_order_is_right(r) and Referral.get_by_id(r.id).list_rank == 0
    r.acknowledge(doctor_user)
    assert stored_order_is_right(r) and Referral.get_by_id(r.id).list_rank == CLOSED_RANK

    declined = write(URGENT)
    declined.submit(doctor_user)
    declined.decline(coordinator_user, "Not our service")
    # A decline waits on the referring clinic (open part of its list) until its doctor saw it.
    assert stored_order_is_right(declined) and Referral.get_by_id(declined.id).list_rank == 1
    assert Referral.get_by_id(declined.id).note_decline_seen(doctor_user)
    assert Referral.get_by_id(declined.id).list_rank == CLOSED_RANK
    assert stored_order_is_right(declined)


def test_overdue_first_then_priority_then_the_oldest_and_closed_ones_newest_first(
    doctor_user, coordinator_user, write
):
    old_routine, routine, urgent, green, late = (
        write(p) for p in (ROUTINE, ROUTINE, URGENT, GREEN, ROUTINE)
    )
    for r in (old_routine, routine, urgent, green, late):
        r.submit(doctor_user)
    received_earlier(old_routine, 5)
    Referral.update(due_by=utcnow() - dt.timedelta(minutes=5)).where(
        Referral.id == late.id
    ).execute()
    cancelled_first, cancelled_last = write(GREEN), write(ROUTINE)
    for r in (cancelled_first, cancelled_last):
        r.submit(doctor_user)
        r.cancel(doctor_user, "Seen elsewhere")
    received_earlier(cancelled_first, 2)
    mine = [late, green, urgent, old_routine, routine, cancelled_last, cancelled_first]
    ids = {r.id for r in mine}

    def listed(who, **filters):
        return [r.id for r in Referral.listing(who, **filters) if r.id in ids]

    open_ones = [r.id for r in mine[:5]]
    assert listed(coordinator_user, state="open") == open_ones
    # "All": the open part first, then the closed, newest first (sent and received alike).
    assert listed(coordinator_user, state="all") == [r.id for r in mine]
    assert listed(doctor_user, state="all") == [r.id for r in mine]
    assert listed(doctor_user, state="cancelled") == [cancelled_last.id, cancelled_first.id]
    rows, _version = Referral.listing(doctor_user, state="all").page(1, 3)
    assert [r.id for r in rows] == [r.id for r in Referral.listing(doctor_user, state="all")][:4]


def test_pages_follow_on_and_the_list_reads_past_a_full_overdue_part(
    doctor_user, coordinator_user, write
):
    referrals = [write(URGENT) for _ in range(5)]
    for number, r in enumerate(referrals):
        r.submit(doctor_user)
        received_earlier(r, 10 - number)
    late = referrals[2:]  # more than a page of two (and one): the on-time part is not read
    Referral.update(due_by=utcnow() - dt.timedelta(minutes=5)).where(
        Referral.id.in_([r.id for r in late])
    ).execute()
    worklist = Referral.listing(coordinator_user, state="open")
    paged, number, rows = [], 0, [None] * 3
    while len(rows) > 2:
        number += 1
        rows, _ = worklist.page(number, 2)
        paged += [r.id for r in rows[:2]]
    assert paged == [r.id for r in worklist]
    assert [i for i in paged if i in {r.id for r in referrals}] == [
        r.id for r in late + referrals[:2]
    ]


def test_the_poll_answers_204_until_a_row_of_the_page_changes_or_leaves_it(
    coordinator, doctor_user, write
):
    r = write(URGENT)
    r.submit(doctor_user)
    r.cancel(doctor_user, "Seen elsewhere")
    page = coordinator.get("/referrals/?state=all").get_data(as_text=True)
    poll = page.split('data-poll hx-get="')[1].split('"')[0].replace("&amp;", "&")
    assert coordinator.get(poll, headers=POLL).status_code == 204
    # Nothing moved, but the cancelled referral left the hub's access window.
    past = utcnow() - dt.timedelta(days=365)
    Referral.update(updated_at=past).where(Referral.id == r.id).execute()
    assert coordinator.get(poll, headers=POLL).status_code == 200


def test_the_badge_stops_counting_at_99(coordinator, doctor_user, write):
    template = write(URGENT)
    template.submit(doctor_user)
    fields = Referral.get_by_id(template.id).__data__
    rows = [{k: v for k, v in fields.items() if k != "id"} for _ in range(100)]
    Referral.insert_many(rows).execute()
    badge = coordinator.get("/today/counts", headers=HX).get_data(as_text=True)
    assert ">99+</span>" in badge


def test_init_db_fills_the_list_order_of_an_older_database(app, runner, write, doctor_user):
    drafted, sent, closed = write(GREEN), write(URGENT), write(ROUTINE)
    for r in (sent, closed):
        r.submit(doctor_user)
    closed.cancel(doctor_user, "Seen elsewhere")
    # The release before: no list_rank or received_at (nor the indexes on them).
    for index in db.get_indexes("referral"):
        if "list_rank" in index.columns:
            db.execute_sql(f'DROP INDEX "{index.name}"')
    for column in ("list_rank", "received_at"):
        db.execute_sql(f'ALTER TABLE "referral" DROP COLUMN {column}')
    db.close()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert all(stored_order_is_right(r) for r in Referral.select())
    assert [Referral.get_by_id(r.id).list_rank for r in (drafted, sent, closed)] == [0, 1, 3]
    indexed = [index.columns for index in db.get_indexes("referral")]
    assert ["to_org_id", "list_rank", "received_at", "id"] in indexed


def _bulk(doctor_user, make_patient, count: int) -> None:
    """`count` referrals of an old register to the hub, mostly closed, some open and late."""
    hub = Organisation.by_name(HUB)
    patient, now = make_patient(), utcnow()
    states = ["closed"] * 17 + ["submitted", "accepted", "info_requested"]
    rows = []
    for number in range(count):
        state = states[number % len(states)]
        priority = (ROUTINE, URGENT, GREEN)[number % 3]
        owner = None if state == "closed" else hub.id
        at = now - dt.timedelta(hours=number)
        rows.append({
            "patient": patient.id, "from_org": doctor_user.organisation_id, "to_org": hub.id,
            "priority": priority, "reason": "Bench", "state": state, "created_by": doctor_user.id,
            "created_at": at, "submitted_at": at, "updated_at": at, "owner": owner,
            "due_by": None if owner is None else at + dt.timedelta(hours=72),
            **expected_order(state, priority, owner, at),
        })  # fmt: skip
    with db.atomic():
        for start in range(0, count, 500):
            Referral.insert_many(rows[start : start + 500]).execute()
    db.execute_sql("ANALYZE")  # every table: the plans must not hang on stale statistics


def sqlite_segments(query) -> dict[str, list[str]]:
    """{segment CTE: the steps of its plan} of the statement, read from SQLite's plan tree."""
    sql, params = query.sql()
    rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    parent = {node: up for node, up, _, _ in rows}
    detail = {node: text for node, _, _, text in rows}
    segments = {}
    for node in detail:
        up = parent[node]
        while up and not detail.get(up, "").startswith(("MATERIALIZE w", "CO-ROUTINE w")):
            up = parent.get(up)
        if up:
            segments.setdefault(detail[up].split()[-1], []).append(detail[node])
    return segments


@pytest.mark.parametrize("who", ["coordinator@hub.demo", "doctor@jinzhou.demo"])
def test_each_part_of_a_list_walks_its_index_and_stops(who, doctor_user, make_patient):
    _bulk(doctor_user, make_patient, 4000)
    reader = user(who)
    for filters in ({"state": "open"}, {"state": "all"}, {"needs": True}):
        worklist = Referral.listing(reader, **filters)
        query = worklist.rows(61)
        if is_sqlite():
            segments = sqlite_segments(query)
            assert len(segments) == len(worklist.segments), segments
            for steps in segments.values():
                assert any("list_rank_received_at_id" in step for step in steps), steps
                assert not any("TEMP B-TREE" in step for step in steps), steps  # no sort
                assert not any(step == "SCAN t1" for step in steps), steps
        else:
            # Each segment (CTE) reads a worklist index; the inbox and outbox walk it in its
            # order (no sort), however few rows PostgreSQL expects the checks (need to know,
            # overdue) to let through. "Needs our action" may still sort here: every owned
            # referral is open, PostgreSQL multiplies the two and expects 91 of the 600 rows
            # (at 200,000 it walks). Around the segments it may hash a small table or read it
            # whole; bench/scale.py shows the plans at 200,000 referrals.
            sql, params = query.sql()
            steps = "\n".join(r[0] for r in db.execute_sql(f"EXPLAIN {sql}", params))
            assert steps.count("list_rank_received_at_id") >= len(worklist.segments), steps
            for segment in steps.split("  CTE w")[1:]:  # those read twice (guards) come first
                # The segment's own scan, before the plans of its checks.
                top = re.split(r"^ *SubPlan", segment, flags=re.M)[0]
                assert "list_rank_received_at_id" in top, segment
                assert "Seq Scan on referral" not in top, segment
                assert "needs" in filters or "Sort" not in top, segment
