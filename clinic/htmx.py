"""The one place that decides full page or fragment, and carries messages to htmx requests.

A request made by htmx for one region (not a boosted navigation, not a history restore) gets
the fragment; everything else gets the full page, so every URL works without JavaScript.
"""

import json
from collections.abc import Callable

from flask import Flask, Response, g, get_flashed_messages, make_response, render_template
from htmx_flask import Htmx, request


def wants_fragment() -> bool:
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(page: str, fragment: str | None = None, /, status: int = 200, **context) -> Response:
    """Render the page, or only its fragment when htmx asked for one region."""
    template = fragment if fragment and wants_fragment() else page
    return make_response(render_template(template, **context), status)


def fragment(template: str, /, status: int = 200, **context) -> Response:
    """A region that only exists as a fragment (a badge, one checked field)."""
    return make_response(render_template(template, **context), status)


def not_modified(version: Callable[[], str]) -> Response | None:
    """For a poll from a client that already shows the current version (its `v` argument):
    204, no body. `version()` runs only for polls, so a page pays nothing for it.

    Every polled fragment answers through here, so "nothing changed" costs one small query.
    """
    seen = request.args.get("v")
    if seen is not None and wants_fragment() and seen == version():
        return make_response("", 204)
    return None


def trigger(event: str, detail: object = True) -> None:
    """Fire a client-side event (HX-Trigger) after this response, e.g. to refresh counts."""
    g.setdefault("hx_events", {})[event] = detail


def _send_events(response: Response) -> Response:
    response.vary.add("HX-Request")
    if not wants_fragment() or response.status_code in range(300, 400):
        return response
    if "HX-Redirect" in response.headers:
        return response  # the messages are for the page the browser is sent to
    events = dict(g.get("hx_events", {}))
    flashes = get_flashed_messages(with_categories=True)
    if flashes:
        events["flash"] = [{"category": c, "message": str(m)} for c, m in flashes]
    if events:
        # ASCII-escaped JSON: header values must be Latin-1, the messages may be Chinese.
        response.headers["HX-Trigger"] = json.dumps(events, ensure_ascii=True)
    return response


def init_app(app: Flask) -> None:
    Htmx(app)
    app.after_request(_send_events)
