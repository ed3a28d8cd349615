"""The base form: WTForms' own messages looked up in our catalogues, not WTForms' zh ones."""

from flask_babel import get_translations
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Form as PlainForm
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


class SubForm(PlainForm):
    """A repeated part of a form (FormField): no CSRF token of its own, the same catalogues."""

    class Meta(CatalogueMeta):
        pass


def options(pairs, blank: bool = False) -> list[SelectChoice]:
    """Options for a select or radio field from (value, label) pairs; blank adds "—" first."""
    leading = [SelectChoice("", "—")] if blank else []
    return leading + [SelectChoice(value, label) for value, label in pairs]


def at_most(characters: int) -> Length:
    """The length limit of a text field, with its message in the user's language."""
    return Length(max=characters, message=_l("At most %(max)d characters."))
