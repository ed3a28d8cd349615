"""Locale and time zone selection: the user's choice first, then the browser's, chosen by script."""

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import (
    DateTimePattern,
    get_date_format,
    get_datetime_format,
    get_time_format,
    parse_pattern,
)
from flask import Flask, current_app, request, session
from flask_babel import (
    Babel,
    force_locale,
    format_date,
    format_datetime,
    format_time,
    get_babel,
    get_locale,
    get_timezone,
)
from flask_login import current_user

from clinic import translation
from clinic.db import utcnow
from clinic.models import LANGUAGES
from clinic.translation import language

TRADITIONAL, SIMPLIFIED = "zh_Hant_HK", "zh_Hans_CN"


def locale_from_header(header_tags) -> str:
    """Pick our locale from Accept-Language by script, not by region string matching.

    Werkzeug's best_match sends zh-CN to Traditional and zh-HK to English; Babel knows that
    zh-HK, zh-MO, zh-TW and yue are written in Traditional characters.
    """
    for tag, _quality in header_tags:
        try:
            locale = Locale.parse(tag, sep="-")
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language == "en":
            return "en"
        if locale.language in ("zh", "yue"):
            written_traditional = locale.script == "Hant" or locale.language == "yue"
            return TRADITIONAL if written_traditional else SIMPLIFIED
    return "en"


# Hong Kong English, unambiguous and on the 24-hour clock: 2 Dec 2026, 2 Dec 2026 20:27.
# CLDR's en is US style (12/2/26, 8:27 PM), which reads as 12 February in Hong Kong.
HONG_KONG_ENGLISH = {
    "date.short": "d MMM y",
    "date.medium": "d MMM y",
    "date.long": "d MMMM y",
    "date.full": "EEEE d MMMM y",
    "time.short": "HH:mm",
    "time.medium": "HH:mm:ss",
    "time.long": "HH:mm:ss",
    "time.full": "HH:mm:ss",
    "datetime.short": "d MMM y HH:mm",
    "datetime.medium": "d MMM y HH:mm",
    "datetime.long": "d MMMM y HH:mm",
    "datetime.full": "EEEE d MMMM y HH:mm",
}


class DateFormats(Mapping):
    """Flask-Babel's format table, read per request: Hong Kong English for en, CLDR for Chinese."""

    def __init__(self, defaults: Mapping) -> None:
        self.defaults = dict(defaults)

    def __getitem__(self, key: str):
        if language() == "en" and key in HONG_KONG_ENGLISH:
            return HONG_KONG_ENGLISH[key]
        return self.defaults[key]

    def __iter__(self):
        return iter(self.defaults)

    def __len__(self) -> int:
        return len(self.defaults)


def select_locale() -> str:
    if current_user.is_authenticated and current_user.language in LANGUAGES:
        return current_user.language
    if session.get("lang") in LANGUAGES:
        return session["lang"]
    return locale_from_header(request.accept_languages)


def select_timezone() -> str:
    if current_user.is_authenticated:
        return current_user.organisation.zone_name
    return current_app.config["CLINIC_TIMEZONE"]


def local_now() -> dt.datetime:
    """The wall-clock time in the organisation's time zone, naive (as a form gives it)."""
    return dt.datetime.now(get_timezone()).replace(tzinfo=None)


def local_today() -> dt.date:
    """Today in the organisation's time zone (00:30 in Hong Kong is not yesterday)."""
    return local_now().date()


def date_in(value: dt.date | dt.datetime, locale: str, with_time: bool = False) -> str:
    """A date (or date and time) in one language, on the organisation's local calendar.

    A datetime is stored in UTC: 23:30 UTC is already the next day in Hong Kong, so it is never
    cut with .date() before it is moved into the organisation's time zone.
    """
    with force_locale(locale):
        day = format_date(value, "medium")
        return f"{day} {format_time(value, 'short')}" if with_time else day


def bilingual(labels: dict, locale: str) -> dict:
    """Each label in English and in the given Chinese script (printed side by side)."""
    pairs = {}
    for key, label in labels.items():
        with force_locale("en"):
            english = str(label)
        with force_locale(locale):
            chinese = str(label)
        pairs[key] = (english, chinese)
    return pairs


def html_lang(locale: str) -> str:
    """The BCP 47 tag for <html lang>: zh_Hant_HK → zh-Hant-HK."""
    return str(locale).replace("_", "-")


def tolerant(format_function: Callable) -> Callable:
    """A date filter that shows a stored value it cannot convert (year 9999 moved into a time
    zone overflows) as it is, in UTC, instead of failing the whole page."""

    @functools.wraps(format_function)
    def render(value, *args, **kwargs):
        try:
            return format_function(value, *args, **kwargs)
        except (OverflowError, ValueError):
            if isinstance(value, dt.datetime):
                return value.isoformat(sep=" ", timespec="minutes") + " UTC"
            return value.isoformat()

    return render


NAMED_FORMATS = ("short", "medium", "long", "full")


def formatted(kind: str) -> Callable:
    """The template filter for `kind` ("date", "time" or "datetime"): Flask-Babel's
    format_date/format_time/format_datetime, with the pattern for each language and format
    looked up and parsed once (Babel finds and parses it again for every value, some 40 us).
    Under TESTING each value is also formatted by Flask-Babel and must read the same."""
    babel_format = {"date": format_date, "time": format_time, "datetime": format_datetime}[kind]

    def render(value, format=None):
        if not isinstance(value, dt.datetime if kind != "date" else dt.date):
            return babel_format(value, format)
        shown = value
        if isinstance(value, dt.datetime):  # stored in UTC, shown on the organisation's clock
            zone = ZoneInfo(get_timezone().zone)  # as pytz's zone, ten times faster to move to
            shown = value.replace(tzinfo=dt.UTC).astimezone(zone)
        text = _pattern(kind, format, language()).apply(shown, get_locale())
        if current_app.testing and text != (expected := babel_format(value, format)):
            raise AssertionError(f"{kind} {value} {format}: {text!r}, Flask-Babel {expected!r}")
        return text

    return render


@functools.lru_cache(maxsize=128)
def _pattern(kind: str, format: str | None, language: str) -> DateTimePattern:
    """Babel's pattern for a kind of value in a format, as Flask-Babel picks it (our table
    for Hong Kong English); a named date and time is the locale's pattern of both."""
    formats = get_babel().instance.date_formats
    format = format or formats[kind]
    if format in NAMED_FORMATS:
        format = formats[f"{kind}.{format}"] or format
    if format not in NAMED_FORMATS:
        return parse_pattern(format)
    locale = Locale.parse(language)
    if kind == "date":
        return get_date_format(format, locale)
    if kind == "time":
        return get_time_format(format, locale)
    # Babel fills the date and the time into the locale's template, unquoted: quote its text.
    template = get_datetime_format(format, locale).replace("'", "")
    parts = re.split(r"(\{[01]\})", template)
    pieces = {"{0}": get_time_format(format, locale).pattern,
              "{1}": get_date_format(format, locale).pattern}  # fmt: skip
    return parse_pattern("".join(pieces.get(p) or _quoted(p) for p in parts))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'" if text else ""


def init_app(app: Flask) -> None:
    Babel(
        app,
        date_formats=DateFormats(Babel.default_date_formats),
        locale_selector=select_locale,
        timezone_selector=select_timezone,
    )
    translation.init_app(app)
    app.jinja_env.filters.update(
        datetimeformat=tolerant(formatted("datetime")),
        dateformat=tolerant(formatted("date")),
        timeformat=tolerant(formatted("time")),
    )
    app.jinja_env.globals.update(
        LANGUAGES=LANGUAGES, now_utc=utcnow, language=language, local_today=local_today
    )
    app.jinja_env.filters.update(html_lang=html_lang, date_in=date_in)
