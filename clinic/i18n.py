"""Locale and time zone selection: the user's choice first, then the browser's, chosen by script."""

import datetime as dt

from babel import Locale, UnknownLocaleError
from flask import Flask, current_app, request, session
from flask_babel import Babel, force_locale, get_locale, get_timezone
from flask_login import current_user

from clinic.db import utcnow
from clinic.models import LANGUAGES

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


def select_locale() -> str:
    if current_user.is_authenticated and current_user.language in LANGUAGES:
        return current_user.language
    if session.get("lang") in LANGUAGES:
        return session["lang"]
    return locale_from_header(request.accept_languages)


def select_timezone() -> str:
    if current_user.is_authenticated and current_user.organisation.timezone:
        return current_user.organisation.timezone
    return current_app.config["CLINIC_TIMEZONE"]


def clinic_today() -> dt.date:
    """Today in the organisation's time zone (a visit at 00:30 Hong Kong time is not yesterday)."""
    return dt.datetime.now(get_timezone()).date()


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


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, now_utc=utcnow, get_locale=get_locale)
    app.jinja_env.filters["html_lang"] = html_lang
