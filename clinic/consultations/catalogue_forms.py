"""Forms of the drug catalogue and the phrase library, with messages in the user's language."""

import re

from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional, ValidationError

from clinic.forms import Form, OnceForm, at_most, options
from clinic.models.drugs import (
    BRANDS_MAX,
    CHINESE_MAX,
    GENERIC_MAX,
    NOTES_MAX,
    REG_NO_MAX,
    Drug,
)
from clinic.models.patients import fold_chinese
from clinic.models.phrases import PHRASE_KINDS, PHRASE_MAX
from clinic.translation import lazy_gettext as _l

REG_NO = re.compile(r"[A-Za-z0-9][A-Za-z0-9 /\-]*")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def line(label, max_length, required=None):
    """One line of text, stripped, with its limit (and "required" message if any)."""
    first = DataRequired(message=required) if required else Optional()
    return StringField(label, validators=[first, at_most(max_length)], filters=[_strip])


def simplified_only(form, field) -> None:
    """Validator: Simplified Chinese, with no Traditional characters (藥 where 药 belongs)."""
    text = field.data or ""
    folded = fold_chinese(text)
    wrong = sorted({a for a, b in zip(text.replace(" ", ""), folded, strict=False) if a != b})
    if wrong:
        raise ValidationError(
            _l("Traditional characters in the Simplified text: %(chars)s", chars=" ".join(wrong))
        )


class DrugForm(Form):
    generic_name = line(_l("Generic name (English)"), GENERIC_MAX, _l("Give the generic name."))
    brand_names = line(_l("Brand names (English, separated by commas)"), BRANDS_MAX)
    name_hant = line(_l("Name in Traditional Chinese"), CHINESE_MAX)
    name_hans = StringField(
        _l("Name in Simplified Chinese"),
        validators=[Optional(), at_most(CHINESE_MAX), simplified_only],
        filters=[_strip],
    )
    hk_registered = BooleanField(_l("Registered in Hong Kong"))
    hk_reg_no = line(_l("Hong Kong registration number (when known)"), REG_NO_MAX)
    mainland_marketed = BooleanField(_l("Marketed on the mainland"))
    gba_listed = BooleanField(
        _l("Listed under the Hong Kong and Macao Drugs and Devices scheme (港澳藥械通)")
    )
    notes = TextAreaField(
        _l("Notes"), validators=[Optional(), at_most(NOTES_MAX)], render_kw={"rows": 3}
    )
    active = BooleanField(_l("Active (offered in the search)"), default=True)
    revision = HiddenField(filters=[lambda v: int(v) if str(v or "").isdigit() else None])

    def __init__(self, *args, hub_id: int, drug: Drug | None = None, **kwargs):
        super().__init__(*args, obj=drug, **kwargs)
        self.hub_id, self.drug = hub_id, drug

    def validate_generic_name(self, field):
        twin = Drug.same_generic(
            self.hub_id, field.data, exclude=self.drug.id if self.drug else None
        )
        if twin is not None:
            raise ValidationError(_l("This drug is already in the catalogue."))

    def validate_hk_reg_no(self, field):
        if not field.data:
            return
        if not REG_NO.fullmatch(field.data):
            raise ValidationError(_l("Letters, digits, spaces, dashes and slashes only."))
        if not self.hk_registered.data:
            raise ValidationError(_l("Tick “Registered in Hong Kong”, or leave the number empty."))

    def drug_data(self) -> dict:
        data = {name: self[name].data for name in Drug.EDITABLE}
        data["hk_reg_no"] = data["hk_reg_no"] or None
        for name in ("brand_names", "name_hant", "name_hans", "notes"):
            data[name] = data[name] or ""
        return data


class NewDrugForm(OnceForm, DrugForm):
    pass


class PhraseTexts(Form):
    text_en = line(_l("Text in English"), PHRASE_MAX, _l("Give the English text."))
    text_hant = line(
        _l("Traditional Chinese (Hong Kong usage)"), PHRASE_MAX,
        _l("Give the Traditional Chinese text."),
    )  # fmt: skip
    text_hans = StringField(
        _l("Simplified Chinese (mainland usage)"),
        validators=[
            DataRequired(message=_l("Give the Simplified Chinese text.")),
            at_most(PHRASE_MAX),
            simplified_only,
        ],
        filters=[_strip],
    )

    def texts(self) -> dict:
        return {name: self[name].data for name in ("text_en", "text_hant", "text_hans")}


class PhraseForm(OnceForm, PhraseTexts):
    kind = SelectField(
        _l("Kind"),
        choices=options(PHRASE_KINDS.items(), blank=True),
        validators=[DataRequired(message=_l("Choose the kind of phrase."))],
    )

    def validate_kind(self, field):
        if field.data not in PHRASE_KINDS:
            raise ValidationError(_l("Choose the kind of phrase."))


class RevisionForm(PhraseTexts):
    """A new version of an approved phrase: at least one of its texts changes."""

    def __init__(self, *args, phrase, **kwargs):
        super().__init__(*args, obj=phrase, **kwargs)
        self.phrase = phrase

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if all(self[n].data == getattr(self.phrase, n) for n in self.texts()):
            self.text_en.errors = [_l("Nothing changed: change at least one of the texts.")]
            return False
        return True
