"""The registration form (also used to edit), its identity documents, consents and search."""

import re

from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Optional, ValidationError

from clinic.forms import Form, OnceForm, SubForm, at_most, options
from clinic.i18n import local_today
from clinic.models import (
    CONSENT_SCOPES,
    CROSS_BORDER,
    DOCUMENT_KINDS,
    LANGUAGES,
    RESIDENCIES,
    SEXES,
    IdentityDocument,
    Patient,
)
from clinic.patients.identity import InvalidDocument, normalise_phone, parse_document
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

MAX_DOCUMENTS = 4
ENGLISH_NAME = re.compile(r"^[A-Za-z][A-Za-z .,'\-]*$")


class DocumentForm(SubForm):
    """One identity document row (a plain WTForms form: the CSRF token is the parent's)."""

    kind = SelectField(
        _l("Document type"),
        choices=options(DOCUMENT_KINDS.items()),
        default="hkid",
        validators=[InputRequired(message=_l("Choose the document type."))],
    )
    number = StringField(
        _l("Document number"),
        validators=[at_most(40)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    country = StringField(
        _l("Issuing country (passport)"),
        validators=[at_most(3)],
        render_kw={"size": 3, "maxlength": 3, "placeholder": "GBR", "autocomplete": "off"},
    )


def _phone(field) -> None:
    if field.data and field.data.strip():
        try:
            field.data = normalise_phone(field.data)
        except InvalidDocument as error:
            raise ValidationError(str(error)) from None


class PatientForm(OnceForm):
    chinese_name = StringField(
        _l("Chinese name"),
        validators=[at_most(40)],
        render_kw={"autocomplete": "off", "lang": "zh"},
    )
    english_name = StringField(
        _l("English name"),
        validators=[at_most(80)],
        render_kw={"autocomplete": "off", "placeholder": "CHAN, Tai Man"},
    )
    sex = SelectField(
        _l("Sex"),
        choices=options(SEXES.items(), blank=True),
        validators=[DataRequired(message=_l("Choose the sex."))],
    )
    date_of_birth = DateField(
        _l("Date of birth"),
        validators=[DataRequired(message=_l("Enter the date of birth."))],
    )
    documents = FieldList(FormField(DocumentForm), min_entries=1, max_entries=MAX_DOCUMENTS)
    add_document = SubmitField(_l("Add another document"))
    phone = StringField(
        _l("Phone"),
        validators=[Optional(), at_most(30)],
        render_kw={"type": "tel", "autocomplete": "off", "placeholder": "+852 9123 4567"},
    )
    address = TextAreaField(
        _l("Address"),
        validators=[at_most(300)],
        render_kw={"rows": 2},
    )
    preferred_language = SelectField(
        _l("Preferred language"), choices=options(LANGUAGES.items()), default="zh_Hant_HK"
    )
    residency = SelectField(
        _l("Residency"),
        choices=options(RESIDENCIES.items(), blank=True),
        validators=[DataRequired(message=_l("Choose the residency."))],
    )
    allergies = TextAreaField(
        _l("Allergies"),
        validators=[at_most(1000)],
        render_kw={"rows": 2},
    )
    conditions = TextAreaField(
        _l("Long-term conditions"),
        validators=[at_most(1000)],
        render_kw={"rows": 2},
    )
    medications = TextAreaField(
        _l("Medications"),
        validators=[at_most(1000)],
        render_kw={"rows": 2},
    )
    insurer = StringField(_l("Insurer"), validators=[at_most(80)])
    policy_number = StringField(
        _l("Policy number"),
        validators=[at_most(40)],
    )
    direct_billing = BooleanField(_l("Direct-billing eligible"))
    emergency_contact_name = StringField(
        _l("Emergency contact"),
        validators=[at_most(80)],
    )
    emergency_contact_relation = StringField(
        _l("Relationship"),
        validators=[at_most(40)],
    )
    emergency_contact_phone = StringField(
        _l("Emergency contact phone"),
        validators=[Optional(), at_most(30)],
        render_kw={"type": "tel", "autocomplete": "off"},
    )
    consent_cross_border = BooleanField(_l("Consents to cross-border sharing of records"))
    register_anyway = BooleanField(_l("This is a different person: register anyway"))

    def __init__(self, *args, clinic_id: int, patient: Patient | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic_id = clinic_id
        self.patient = patient
        self.parsed_documents: list[dict] = []
        self.document_warnings: dict[int, str] = {}
        self.registered_elsewhere: dict[int, Patient] = {}
        self.duplicates: list[Patient] = []
        self.documents_invalid = False

    def validate_english_name(self, field) -> None:
        if not (field.data or "").strip() and not (self.chinese_name.data or "").strip():
            raise ValidationError(_("Enter the Chinese name, the English name or both."))
        if field.data and not ENGLISH_NAME.match(field.data.strip()):
            raise ValidationError(
                _("Use Latin letters, spaces, commas and hyphens, e.g. CHAN, Tai Man.")
            )

    def validate_date_of_birth(self, field) -> None:
        if field.data and field.data > local_today():
            raise ValidationError(_("The date of birth cannot be in the future."))
        if field.data and field.data.year < 1890:
            raise ValidationError(_("Check the year of birth."))

    def validate_phone(self, field) -> None:
        _phone(field)

    def validate_emergency_contact_phone(self, field) -> None:
        _phone(field)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        return self.check_documents() and valid

    def check_documents(self) -> bool:
        """Each filled row parsed and normalised; at least one; none registered already."""
        self.parsed_documents, seen, valid = [], set(), True
        born = self.date_of_birth.data if not self.date_of_birth.errors else None
        for index, entry in enumerate(self.documents.entries):
            row = entry.form
            if not (row.number.data or "").strip():
                continue
            try:
                document = parse_document(
                    row.kind.data, row.number.data, row.country.data, date_of_birth=born
                )
            except InvalidDocument as error:
                row.number.errors = [*row.number.errors, str(error)]
                valid = False
                continue
            row.number.data = document.number
            if document.warnings:
                self.document_warnings[index] = " ".join(document.warnings)
            key = (document.kind, document.identity_key)
            if key in seen:
                row.number.errors = [*row.number.errors, _("This document is listed twice.")]
                valid = False
                continue
            seen.add(key)
            existing = IdentityDocument.registered(self.clinic_id, *key)
            if existing and (self.patient is None or existing.patient_id != self.patient.id):
                row.number.errors = [
                    *row.number.errors,
                    _("This document is already registered at this clinic."),
                ]
                self.registered_elsewhere[index] = existing.patient
                valid = False
                continue
            self.parsed_documents.append(
                {
                    "kind": document.kind,
                    "number": document.number,
                    "identity_key": document.identity_key,
                    "country": document.country,
                }
            )
        if valid and not self.parsed_documents:
            first = self.documents.entries[0].form.number
            first.errors = [*first.errors, _("Enter at least one identity document.")]
            valid = False
        self.documents_invalid = not valid
        return valid

    def check_duplicates(self) -> bool:
        """True when saving may go ahead: no look-alike, or the user confirmed."""
        self.duplicates = Patient.possible_duplicates(
            self.clinic_id,
            self.date_of_birth.data,
            self.chinese_name.data,
            self.english_name.data,
            exclude=self.patient.id if self.patient else None,
        )
        return not self.duplicates or self.register_anyway.data

    def patient_fields(self) -> dict:
        values = {name: getattr(self, name).data for name in Patient.EDITABLE}
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = value.strip() or None
        values["direct_billing"] = bool(self.direct_billing.data)
        return values

    def consents(self) -> list[tuple[str, str | None]]:
        return [("cross_border", None)] if self.consent_cross_border.data else []

    def grow(self) -> None:
        """ "Add another document": one more empty row, up to the maximum."""
        if len(self.documents.entries) < MAX_DOCUMENTS:
            self.documents.append_entry()

    @staticmethod
    def data_from(patient: Patient) -> dict:
        data = {name: getattr(patient, name) for name in Patient.EDITABLE}
        data["documents"] = [
            {"kind": d.kind, "number": d.display_number, "country": d.country or ""}
            for d in patient.documents.order_by(IdentityDocument.id)
        ]
        data["documents"].append({"kind": "hkid", "number": "", "country": ""})
        return data


class ConsentForm(Form):
    scope = SelectField(
        _l("Scope"), choices=options([(CROSS_BORDER, CONSENT_SCOPES[CROSS_BORDER])])
    )
    note = StringField(_l("Note"), validators=[at_most(300)])
