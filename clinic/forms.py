"""The base form: WTForms' own messages looked up in our catalogues, not WTForms' zh ones."""

import datetime as dt
import secrets

from flask import Flask, current_app, flash, request, session
from flask_babel import get_timezone, get_translations
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import FieldList, FormField, HiddenField, StringField, TextAreaField
from wtforms import Form as PlainForm
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, ValidationError

from clinic.db import AHEAD
from clinic.inputs import has_control_characters
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

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
    """Every form refuses control characters (NUL breaks PostgreSQL text; none belongs in a
    name or a note) before any other check runs, so no query ever sees them; a form sent
    just as the session timed out comes back filled in after the same user logs in."""

    class Meta(CatalogueMeta):
        pass

    def __init__(self, *args, **kwargs):
        if "formdata" not in kwargs and (kept := _kept_submission()):
            kwargs["formdata"] = kept
        super().__init__(*args, **kwargs)

    def validate(self, extra_validators=None) -> bool:
        tainted = [field for field in _leaf_fields(self) if _has_control(field)]
        if not tainted:
            return super().validate(extra_validators)
        for field in _leaf_fields(self):
            field.errors = [CONTROL_MESSAGE] if field in tainted else []
        self._errors = None
        return False

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


def move_buttons(*args, **kwargs) -> Markup:
    """The move buttons of every workflow (templates/_moves.html), a template global: imported
    with `{% from %}` into a row's template, the macros' module is run again for every row."""
    return current_app.jinja_env.get_template("_moves.html").module.move_buttons(*args, **kwargs)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(once_key=once_key, move_buttons=move_buttons)


CONTROL_MESSAGE = _l("Remove the control characters (invisible characters) from this field.")


def _leaf_fields(form):
    """Every field, inside field lists and sub-forms too."""
    for field in form:
        if isinstance(field, FieldList):
            for entry in field.entries:
                yield from _leaf_fields(entry.form) if isinstance(entry, FormField) else [entry]
        elif isinstance(field, FormField):
            yield from _leaf_fields(field.form)
        else:
            yield field


def _has_control(field) -> bool:
    one_line = not isinstance(field, TextAreaField)
    return any(
        isinstance(raw, str) and has_control_characters(raw, one_line=one_line)
        for raw in field.raw_data or ()
    )


def options(pairs, blank: bool = False) -> list[SelectChoice]:
    """Options for a select or radio field from (value, label) pairs; blank adds "—" first."""
    leading = [SelectChoice("", "—")] if blank else []
    return leading + [SelectChoice(value, label) for value, label in pairs]


def at_most(characters: int) -> Length:
    """The length limit of a text field, with its message in the user's language."""
    return Length(max=characters, message=_l("At most %(max)d characters."))


def upcoming(form, field) -> None:
    """Validator: a date or (local) date-time not in the past, at most two years ahead, in the
    user's time zone; anything else is refused before it is converted or stored."""
    value = field.data
    if value is None:
        return
    now = dt.datetime.now(get_timezone()).replace(tzinfo=None, second=0, microsecond=0)
    earliest, latest = now, now + AHEAD
    if not isinstance(value, dt.datetime):
        earliest, latest = earliest.date(), latest.date()
    if value < earliest:
        raise ValidationError(_l("This is in the past."))
    if value > latest:
        raise ValidationError(_l("At most two years ahead."))


class SearchForm(Form):
    """A search box. Sent in a POST body, never in the URL: what is typed (an HKID, a phone)
    stays out of access logs and the shared PC's history."""

    q = StringField(validators=[at_most(60)], filters=[lambda v: (v or "").strip()])

    @property
    def terms(self) -> str:
        """What was typed, when the form was posted and valid ("" otherwise)."""
        return self.q.data if self.validate_on_submit() else ""
