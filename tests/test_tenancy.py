"""Tenant isolation: nothing of one organisation is reachable from another (404, audited).

Every record URL is found by crawling as its owner, then requested (GET and every form action
or htmx POST found on those pages) by a user of another organisation of the same kind.
"""

import re
from urllib.parse import urlsplit

import pytest

from clinic.models import HUB, AuditEvent, Organisation, Referral, User

from conftest import Seen, crawl, crawl_group, log_in, past_access_window

RECORD_URL = re.compile(r"/\d+(/|$)")
HUB_ROLES = ("coordinator", "specialist", "pharmacist")
POSTS = re.compile(r'(?:<form[^>]*\saction|\shx-post)="([^"]+)"')


def record_pages(seen):
    """(GET URLs of records, POST URLs on those pages) among what a crawl saw."""
    gets, posts = set(), set()
    for page in seen:
        if RECORD_URL.search(urlsplit(page.url).path):
            gets.add(page.url)
            if "text/html" in page.content_type:
                posts |= {
                    u for u in POSTS.findall(page.text()) if RECORD_URL.search(urlsplit(u).path)
                }
    return gets, posts


def crawled(client, start: str):
    """What a crawl from `start` sees now (not kept: the data is not the demo's alone)."""
    for url, response in crawl(client, start):
        yield Seen(url, response.status_code, response.content_type, response.data)


def assert_unreachable(intruder, gets, posts):
    denied_before = AuditEvent.select().where(AuditEvent.action == "access_denied").count()
    for url in sorted(gets):
        assert intruder.get(url).status_code == 404, url
    for url in sorted(posts):
        assert intruder.post(url, data={}).status_code == 404, f"POST {url}"
    denied = AuditEvent.select().where(AuditEvent.action == "access_denied").count()
    assert denied - denied_before >= len(gets) + len(posts)


@pytest.mark.parametrize("owner_email", ["doctor@huangge.demo", "nurse@huangge.demo"])
def test_a_clinic_reaches_nothing_of_another_clinic(login, role_crawls, owner_email):
    gets, posts = record_pages(role_crawls.seen(login(owner_email), owner_email))
    assert gets, "the demo clinic should have records to protect"
    assert_unreachable(login("doctor@jinzhou.demo"), gets, posts)
    assert_unreachable(login("nurse@jinzhou.demo"), gets, posts)


@pytest.mark.parametrize(
    "role",
    [pytest.param(r, marks=crawl_group(f"{r}@hub.demo")) for r in HUB_ROLES],
)
def test_a_hub_reaches_nothing_addressed_to_another_hub(app, login, client, role_crawls, role):
    email = f"{role}@hub.demo"
    gets, posts = record_pages(role_crawls.seen(login(email), email))
    other_hub = Organisation.create(name="Other Hub Hospital", kind=HUB)
    with app.app_context():
        User.create_with_password(
            "other-hub-pw",
            email=f"{role}@other.demo",
            name="Other",
            role=role,
            organisation=other_hub,
        )
    assert_unreachable(log_in(client, f"{role}@other.demo", "other-hub-pw"), gets, posts)


@crawl_group("doctor@jinzhou.demo")
def test_hub_staff_open_only_patients_referred_to_their_hub(login, role_crawls):
    email = "doctor@jinzhou.demo"
    gets, _ = record_pages(role_crawls.seen(login(email), email))
    patient_ids = {int(m.group(1)) for url in gets if (m := re.match(r"/patients/(\d+)", url))}
    hub = Organisation.by_name("Nansha Hub Hospital")
    referred = {r.patient_id for r in Referral.select().where(Referral.to_org == hub)}
    unreferred = patient_ids - referred
    assert unreferred, "the demo clinic should have patients never referred"
    coordinator = login("coordinator@hub.demo")
    for patient_id in sorted(unreferred):
        assert coordinator.get(f"/patients/{patient_id}").status_code == 404


def test_pharmacists_do_not_see_referred_patients(login):
    referred = Referral.select().where(Referral.state != "draft").first()
    assert login("specialist@hub.demo").get(f"/patients/{referred.patient_id}").status_code == 200
    assert login("pharmacist@hub.demo").get(f"/patients/{referred.patient_id}").status_code == 404


# How each open referral is closed by its own workflow (move, side that makes it, role).
CLOSING_MOVES = {
    ("up", "draft"): ("cancel", "from_org", "doctor"),
    ("up", "submitted"): ("cancel", "from_org", "doctor"),
    ("up", "info_requested"): ("cancel", "from_org", "doctor"),
    ("up", "accepted"): ("no_show", "to_org", "coordinator"),
    ("up", "completed"): ("acknowledge", "from_org", "doctor"),
    ("down", "draft"): ("cancel", "from_org", "specialist"),
    ("down", "submitted"): ("decline", "to_org", "doctor"),
}


def close_every_referral():
    """Every open referral closed through its moves, as the people who would close it."""
    for referral in Referral.select():
        closing = CLOSING_MOVES.get((referral.direction, referral.state))
        if closing is None:
            continue
        name, side, role = closing
        actor = User.get(User.organisation == getattr(referral, f"{side}_id"), User.role == role)
        reason = {"reason": "Closed for the test"} if name in ("cancel", "decline") else {}
        getattr(referral, name)(actor, **reason)
    assert not [r for r in Referral.select() if r.is_open]


def close_every_service_day():
    """Every open service day completed (published) or cancelled (draft) by its clinic."""
    from clinic.models import ServiceDay

    for day in ServiceDay.select().where(ServiceDay.state.in_(("draft", "published"))):
        doctor = User.get(User.organisation == day.clinic_id, User.role == "doctor")
        if day.state == "published":
            day.complete(doctor)
        else:
            day.cancel(doctor, "Closed for the test")


@pytest.mark.parametrize("role", ["coordinator", "specialist"])
def test_hub_access_ends_everywhere_when_the_window_closes(app, login, role):
    close_every_referral()
    close_every_service_day()
    # The inbox opens on open referrals: closed ones are listed under the "all" filter.
    gets, posts = record_pages(crawled(login(f"{role}@hub.demo"), "/referrals/?state=all"))
    assert any("/patients/" in url for url in gets), "the hub should see referred patients"
    assert any(url.endswith("/fhir") for url in gets) and any("/letter" in url for url in gets)
    with past_access_window(app):
        hub_user = login(f"{role}@hub.demo")
        assert_unreachable(hub_user, gets, posts)
        inbox = hub_user.get("/referrals/").get_data(as_text=True)
        assert not RECORD_URL.search(" ".join(re.findall(r'href="(/referrals/[^"]*)"', inbox)))
