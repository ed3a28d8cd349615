"""Patients registered at a clinic, their identity documents and consents.

A patient belongs to the clinic that registered them (each clinic keeps its own register); the
same identity document can be registered only once per clinic. Hub staff reach a patient only
through a referral or consultation addressed to their hub.
"""

from flask_babel import lazy_gettext as _l
from peewee import BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, TextField

from clinic.db import utcnow
from clinic.models.core import BaseModel, Organisation, User

SEXES = {"F": _l("Female"), "M": _l("Male"), "X": _l("Other / not stated")}
RESIDENCIES = {
    "hk": _l("Hong Kong"),
    "macao": _l("Macao"),
    "mainland": _l("Mainland China"),
    "other": _l("Other"),
}
DOCUMENT_KINDS = {
    "hkid": _l("Hong Kong Identity Card"),
    "cn_id": _l("Mainland Resident ID / HK-Macao residence permit"),
    "mo_id": _l("Macao Resident Identity Card"),
    "home_return": _l("Mainland Travel Permit for HK/Macao residents (Home Return Permit)"),
    "exit_entry": _l("Exit-Entry Permit to HK/Macao"),
    "passport": _l("Passport"),
}
CONSENT_SCOPES = {
    "cross_border": _l("Cross-border sharing of records"),
}


class Patient(BaseModel):
    clinic = ForeignKeyField(Organisation, backref="patients", index=True)
    chinese_name = CharField(null=True)
    english_name = CharField(null=True)
    sex = CharField(choices=list(SEXES.items()))
    date_of_birth = DateField()
    phone = CharField(null=True)
    address = TextField(null=True)
    preferred_language = CharField(default="zh_Hant_HK")
    residency = CharField(choices=list(RESIDENCIES.items()))
    allergies = TextField(null=True)
    conditions = TextField(null=True)
    medications = TextField(null=True)
    insurer = CharField(null=True)
    policy_number = CharField(null=True)
    direct_billing = BooleanField(default=False)
    emergency_contact_name = CharField(null=True)
    emergency_contact_phone = CharField(null=True)
    emergency_contact_relation = CharField(null=True)
    created_at = DateTimeField(default=utcnow)
    created_by = ForeignKeyField(User, null=True)
    updated_at = DateTimeField(default=utcnow)


class IdentityDocument(BaseModel):
    patient = ForeignKeyField(Patient, backref="documents", on_delete="CASCADE")
    clinic = ForeignKeyField(Organisation)
    kind = CharField(choices=list(DOCUMENT_KINDS.items()))
    number = CharField()  # normalised: upper case, no brackets, slashes or spaces
    identity_key = CharField()  # the part that stays the same across renewals
    country = CharField(null=True)  # passports: issuing country (ISO 3166 alpha-3)

    class Meta:
        indexes = (
            (("clinic", "kind", "identity_key"), True),
            (("identity_key",), False),
        )


class Consent(BaseModel):
    """Never edited: withdrawn, or superseded by a newer record."""

    patient = ForeignKeyField(Patient, backref="consents", on_delete="CASCADE")
    scope = CharField(choices=list(CONSENT_SCOPES.items()))
    note = TextField(null=True)
    recorded_by = ForeignKeyField(User)
    recorded_at = DateTimeField(default=utcnow)
    withdrawn_by = ForeignKeyField(User, null=True)
    withdrawn_at = DateTimeField(null=True)


PATIENT_MODELS = [Patient, IdentityDocument, Consent]
