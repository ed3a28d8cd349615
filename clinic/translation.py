"""Messages in the reader's language, with the catalogue found once a request.

Flask-Babel finds the catalogue again for every message (four context lookups and the
locale's name written out), and a list page shows several hundred messages; here the
catalogue is kept on the request with the locale it belongs to, so a `force_locale` block
(a letter in the patient's language) still reads its own. Everything else is Flask-Babel's.
"""

from flask import Flask, g
from flask_babel import get_locale, get_translations
from flask_babel.speaklater import LazyString
from markupsafe import Markup, escape


def catalogue():
    """The translations of the locale in force now (Flask-Babel's object, found once for it)."""
    kept = _kept()
    return get_translations() if kept is None else kept[1]


def language() -> str:
    """The name of the locale in force now: en, zh_Hant_HK or zh_Hans_CN."""
    kept = _kept()
    return str(get_locale() or "en") if kept is None else kept[2]


def _kept() -> tuple | None:
    """(locale, its translations, its name) for the locale in force; None outside an app."""
    try:
        request_globals = g._get_current_object()
    except RuntimeError:
        return None
    locale = getattr(getattr(request_globals, "_flask_babel", None), "babel_locale", None)
    kept = getattr(request_globals, "clinic_catalogue", None)
    if locale is None or kept is None or kept[0] is not locale:
        translations = get_translations()  # finds the locale first
        locale = get_locale()
        kept = request_globals.clinic_catalogue = (locale, translations, str(locale))
    return kept


def gettext(string: str, **variables) -> str:
    text = catalogue().ugettext(string)
    return text % variables if variables else text


class LazyText(LazyString):
    """A message translated when it is shown. Escaped, it is translated once (a plain lazy
    string is translated twice: once to look for `__html__`, once to escape it)."""

    def __html__(self) -> Markup:
        return escape(str(self))


def lazy_gettext(string: str, **variables) -> LazyText:
    return LazyText(gettext, string, **variables)


def init_app(app: Flask) -> None:
    """Templates translate through the kept catalogue too (after Flask-Babel has set up)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda string: catalogue().ugettext(string),
        ngettext=lambda singular, plural, num: catalogue().ungettext(singular, plural, num),
        pgettext=lambda context, string: catalogue().upgettext(context, string),
        npgettext=lambda context, singular, plural, num: catalogue().unpgettext(
            context, singular, plural, num
        ),
        newstyle=True,
    )
