"""The base form: WTForms' own messages looked up in our catalogues, not WTForms' zh ones."""

import secrets

from flask import Flask
from flask_babel import get_translations
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import HiddenField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

# Messages WTForms produces itself (type conversion); listed so they are extracted and translated.
WTFORMS_MESSAGES = (
    _l("Not a valid date value."),
    _l("Not a valid integer value."),
    _l("Not a valid choice."),
    _l("Not a valid time value."),
    _l("Invalid email address."),
)


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return get_translations()

    def move_data(self) -> dict:
        """The fields as keyword arguments of the model method the form feeds."""
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token"}


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
