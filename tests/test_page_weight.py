"""Performance budget: every page a user can reach, for every role, stays small on the wire.

A crawler starts at /today for each demo role and follows every link and every htmx GET on the
pages it sees, so new routes are covered as soon as something links to them.
"""

import gzip
from urllib.parse import urlsplit

import pytest

from conftest import crawl, for_each_role

PAGE_BUDGET = 14_000  # bytes, gzip: fits the first round trips of a slow link
FRAGMENT_BUDGET = 8_000
ROLES = (
    "doctor@jinzhou.demo",
    "nurse@jinzhou.demo",
    "coordinator@hub.demo",
    "specialist@hub.demo",
    "pharmacist@hub.demo",
    "admin@hub.demo",
)


def wire_size(body: bytes) -> int:
    return len(gzip.compress(body, compresslevel=6))


@pytest.mark.parametrize("email", for_each_role(ROLES))
def test_every_reachable_page_and_fragment_is_within_budget(login, role_crawls, email):
    client = login(email)
    pages = []
    for url, response in role_crawls.crawl(client, email):
        assert response.status_code in (200, 204), (url, response.status_code)
        if "text/html" not in response.content_type:
            continue
        pages.append(url)
        size = wire_size(response.data)
        assert size <= PAGE_BUDGET, f"{url}: {size} bytes gzip, budget {PAGE_BUDGET}"
    # The fragments once the crawl is done: it ran as it would alone, and is kept for the
    # tests that need only what it reached.
    for url in pages:
        fragment = client.get(url, headers={"HX-Request": "true"})
        if fragment.status_code == 200 and b"<html" not in fragment.data:
            size = wire_size(fragment.data)
            assert size <= FRAGMENT_BUDGET, f"{url} fragment: {size} bytes gzip"
    assert pages


def test_every_page_route_is_reached_by_some_role(app, login, role_crawls):
    """No page hides from the budget: each GET route without parameters is linked somewhere
    (by a role's crawl over today's demo data: the one kept on this worker, or one made now)."""
    reached = set()
    for email in ROLES:
        paths = role_crawls.paths(email)
        if paths is None:
            paths = {urlsplit(url).path for url, _ in crawl(login(email))}
        reached |= paths
    routes = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and not rule.rule.startswith("/static")
    }
    # The login and its second step are reached by logging in, not by links.
    unreached = routes - reached - {"/", "/login", "/login/code", "/login/enrol"}
    assert not unreached, f"not linked from any page: {sorted(unreached)}"
