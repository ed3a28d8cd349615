"""Input that cannot break a shared page: one id parser, one page number, no control characters.

Every id in a URL path, a query argument or a form (`/referrals/<int:…>`, `page`, `service`,
`org`, `version`) goes through `parse_id`: ASCII digits within the 64-bit range both engines
store, so `²` or a 20-digit number is "not found", never an error. Control characters (NUL
breaks PostgreSQL text) are refused in query arguments here and in every form by the form base
class (`clinic.forms.Form`), with a 422.
"""

import re

from flask import Flask, abort, request
from werkzeug.routing import BaseConverter

ID_MAX = 2**63 - 1
PAGE_MAX = 10_000
ASCII_ID = re.compile(r"[0-9]{1,19}")
# C0 controls but tab, line feed and carriage return (text areas keep their lines), and DEL.
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in one-line values: query arguments, `next`


def parse_id(value) -> int | None:
    """The id as an int, or None unless it is 1 to 19 ASCII digits within 1 … 2⁶³−1."""
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not ASCII_ID.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= ID_MAX else None


def arg_id(name: str) -> int | None:
    """A query or form argument that names a record, parsed (None when absent or malformed)."""
    return parse_id(request.values.get(name, ""))


def arg_page() -> int:
    """The page number of a list, clamped to 1 … PAGE_MAX."""
    return min(parse_id(request.args.get("page", "")) or 1, PAGE_MAX)


def has_control_characters(text: str, one_line: bool = False) -> bool:
    return bool((CONTROL if one_line else CONTROL_IN_TEXT).search(text))


class IdConverter(BaseConverter):
    """`<int:…>` in every route: ASCII digits in the 64-bit range, else the route does not match
    (404)."""

    regex = r"[0-9]{1,19}"
    weight = 50

    def to_python(self, value: str) -> int:
        from werkzeug.routing import ValidationError

        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value) -> str:
        return str(int(value))


def _refuse_control_characters_in_query() -> None:
    for values in request.args.listvalues():
        if any(has_control_characters(value, one_line=True) for value in values):
            abort(422)


def init_app(app: Flask) -> None:
    """Before any route is added: ids in paths are parsed by `IdConverter`."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(_refuse_control_characters_in_query)
