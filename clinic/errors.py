"""Friendly, translated error pages; htmx requests get the message as a toast instead."""

from flask import Flask, flash, request
from werkzeug.exceptions import HTTPException

from clinic.auth.access import audit
from clinic.htmx import render, wants_fragment
from clinic.translation import lazy_gettext as _l

MESSAGES = {
    400: (
        _l("Bad request"),
        _l("The request could not be understood. Reload the page and try again."),
    ),
    403: (_l("Not allowed"), _l("Your role does not give access to this page.")),
    404: (_l("Not found"), _l("There is nothing here, or it is not yours to see.")),
    405: (_l("Not allowed"), _l("This address does not accept that kind of request.")),
    413: (_l("Too large"), _l("What you sent is larger than this system accepts.")),
    422: (_l("Cannot process"), _l("Some of what you entered needs correcting.")),
    429: (_l("Too many attempts"), _l("Too many attempts. Wait a minute, then try again.")),
    500: (
        _l("Something went wrong"),
        _l("An error on our side stopped this. Nothing you entered was saved by it; try again."),
    ),
}


def _handle(error: HTTPException):
    """Every HTTP error, including the 500 Flask raises for an unhandled exception."""
    code = error.code if error.code in MESSAGES else 500
    if code == 429:  # a refusal like any other: on the record
        audit("rate_limited", "page", request.path)
    title, message = MESSAGES[code]
    if wants_fragment():
        flash(message, "error")
        return "", code
    return render("errors/error.html", status=code, code=code, title=title, message=message)


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle)
