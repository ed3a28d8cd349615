import os

from test_query_budget import HX


def test_debug(login, count_statements):
    client = login(os.environ.get("WHO", "pharmacist@hub.demo"))
    for url in os.environ["URLS"].split(","):
        with count_statements() as seen:
            r = client.get(url, headers=HX if url.startswith("HX") else {})
        print("\n==", url, r.status_code, len(seen.statements))
        for s in seen.statements:
            print("   ", s[:230])
