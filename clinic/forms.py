"""The base form: WTForms' own messages looked up in our catalogues, not WTForms' zh ones."""

import secrets

from flask import Flask, flash, request, session
from flask_babel import get_translations
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import Form as PlainForm
from wtforms import HiddenField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

# Messages WTForms produces itself (type conversion); listed so they are extracted and translated.
WTFORMS_MESSAGES = (
    _l("Not a valid date value."),
    _l("Not a valid datetime value."),
    _l("Invalid Choice: could not coerce."),
    _l("Not a valid integer value."),
    _l("Not a valid choice."),
    _l("Not a valid time value."),
    _l("Invalid email address."),
)


class CatalogueMeta:
    def get_translations(self, form):
        return get_translations()


class Form(FlaskForm):
    class Meta(CatalogueMeta):
        pass

    def __init__(self, *args, **kwargs):
        if "formdata" not in kwargs and (kept := _kept_submission()):
            kwargs["formdata"] = kept
        super().__init__(*args, **kwargs)

    def move_data(self) -> dict:
        """The fields as keyword arguments of the model method the form feeds."""
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token"}


def _kept_submission() -> MultiDict | None:
    """What this user sent to this page just after their session timed out, once, after login."""
    if request.method != "GET" or session.get("restore") != request.path:
        return None
    from clinic.models import PendingSubmission

    session.pop("restore")
    fields = PendingSubmission.take(current_user.id, request.path)
    if not fields:
        return None
    flash(_("What you had typed is back in the form: check it, then send it again."), "info")
    return MultiDict(fields)


class SubForm(PlainForm):
    """A repeated part of a form (FormField): no CSRF token of its own, the same catalogues."""

    class Meta(CatalogueMeta):
        pass


class OnceForm(Form):
    """A form that creates something: its one-time key makes a repeated submission (a double
    click, a retry on a slow link) return the first result instead of creating a twin."""

    submission_key = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.submission_key.data:
            self.submission_key.data = secrets.token_urlsafe(24)

    def move_data(self) -> dict:
        data = super().move_data()
        data.pop("submission_key", None)
        return data


def once_key() -> Markup:
    """The one-time key of a create form that has no form class (a "Check in" button)."""
    return Markup('<input type="hidden" name="submission_key" value="%s">') % secrets.token_urlsafe(
        24
    )


def init_app(app: Flask) -> None:
    app.jinja_env.globals["once_key"] = once_key


def options(pairs, blank: bool = False) -> list[SelectChoice]:
    """Options for a select or radio field from (value, label) pairs; blank adds "—" first."""
    leading = [SelectChoice("", "—")] if blank else []
    return leading + [SelectChoice(value, label) for value, label in pairs]


def at_most(characters: int) -> Length:
    """The length limit of a text field, with its message in the user's language."""
    return Length(max=characters, message=_l("At most %(max)d characters."))
