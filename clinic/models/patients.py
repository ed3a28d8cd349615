"""Patients registered at a clinic, their identity documents, consents and same-day visits.

A patient belongs to the clinic that registered them (each clinic keeps its own register); the
same identity document can be registered only once per clinic. Hub staff reach a patient only
through a referral or consultation addressed to their hub (see `Patient.hub_visibility`).
"""

import datetime as dt
import functools
import operator
import re

from peewee import (
    JOIN,
    SQL,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    chunked,
    fn,
)

from clinic.db import Given, alias, compiled_rows, db, is_sqlite, row_exists, utcnow
from clinic.domains import hub_visibility
from clinic.models.core import (
    DOCTOR,
    NURSE,
    BaseModel,
    Organisation,
    TimelineEvent,
    User,
)
from clinic.translation import lazy_gettext as _l
from clinic.workflow import Move, Refused, Stateful, Workflow

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
CROSS_BORDER, SHARE_WITH_CLINIC = "cross_border", "share_with_clinic"
CONSENT_SCOPES = {
    CROSS_BORDER: _l("Cross-border sharing of records"),
    # Recorded with a down-referral to a clinic other than the one that referred the patient.
    SHARE_WITH_CLINIC: _l("Sharing of records with a named clinic"),
}

# Search keys and name comparison -----
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
NOT_WORD = re.compile(r"[^0-9A-Za-z\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
SEARCH_LIMIT = 20


@functools.cache
def _to_simplified():
    from opencc import OpenCC

    return OpenCC("hk2s")


def fold_chinese(text: str | None) -> str:
    """Chinese in Simplified characters without spaces: 陳 大文 and 陈大文 compare equal."""
    return _to_simplified().convert(re.sub(r"\s+", "", text or ""))


def english_words(text: str | None) -> list[str]:
    """Upper-case words without punctuation: "CHAN, Tai-man" → ["CHAN", "TAI", "MAN"]."""
    return [w for w in NOT_WORD.split((text or "").upper().replace("-", " ")) if w]


def english_key(text: str | None) -> str:
    """Case- and order-insensitive: "Chan Tai Man" and "TAI MAN, CHAN" give the same key."""
    return " ".join(sorted(english_words(text)))


def search_tokens(query: str) -> list[str]:
    """What the user typed, as folded key prefixes (at most four).

    A query with digits is one number (document or phone, spaces and brackets ignored); anything
    else is words, Chinese folded to Simplified, English upper case.
    """
    query = (query or "").strip()[:100]
    if any(c.isdigit() for c in query):
        number = re.sub(r"[\s()/\-.+]", "", query).upper()
        return [number] if number.isalnum() else []
    tokens = []
    for word in NOT_WORD.split(query):
        if not word:
            continue
        tokens.append(fold_chinese(word) if CJK.search(word) else word.upper())
    return tokens[:4]


class SearchKeyField(CharField):
    """Compared code point by code point on every engine, so a prefix is a range of the index."""

    def ddl(self, ctx):
        node = super().ddl(ctx)
        if not is_sqlite():
            node.nodes.append(SQL('COLLATE "C"'))
        return node


def prefix_range(field, prefix: "str | Given"):
    """field starts with prefix, as a range the B-tree index answers (no LIKE, no scan); a
    Given prefix gives the range's upper end too."""
    if isinstance(prefix, Given):
        return (field >= prefix) & (field < prefix.derived(_just_past))
    return (field >= prefix) & (field < _just_past(prefix))


def _typed_length(token: "str | Given") -> int:
    return len(token.value if isinstance(token, Given) else token)


def _just_past(prefix: str) -> str:
    """The first text after every text that starts with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# Patients -----
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
    # Folded copies for the duplicate check (same clinic, same date of birth, same name).
    chinese_name_folded = CharField(null=True)
    english_name_key = CharField(null=True)

    class Meta:
        indexes = ((("clinic", "date_of_birth"), False),)

    EDITABLE = (
        "chinese_name",
        "english_name",
        "sex",
        "date_of_birth",
        "phone",
        "address",
        "preferred_language",
        "residency",
        "allergies",
        "conditions",
        "medications",
        "insurer",
        "policy_number",
        "direct_billing",
        "emergency_contact_name",
        "emergency_contact_phone",
        "emergency_contact_relation",
    )

    @property
    def display_name(self) -> str:
        return " ".join(n for n in (self.chinese_name, self.english_name) if n) or f"#{self.id}"

    @property
    def sex_label(self) -> str:
        return str(SEXES.get(self.sex, self.sex))

    @property
    def residency_label(self) -> str:
        return str(RESIDENCIES.get(self.residency, self.residency))

    def age_on(self, day: dt.date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    # Who sees whom -----
    @classmethod
    def visible_to(cls, user: User):
        """The patients this user may see, as a composable query.

        Clinic doctors and nurses: their clinic's register. Hub staff: only what
        `hub_visibility` allows. Administrators: none.
        """
        if user.organisation.is_hub:
            return cls.select().where(cls.hub_visibility(user))
        if user.has_role(*CLINIC_STAFF):
            return cls.select().where(cls.clinic == user.organisation_id)
        return cls.select().where(SQL("1 = 0"))  # administrators govern users, not records

    @classmethod
    def need_to_know(cls, organisation_id: int, window, *patient_fields):
        """The one rule for every record that carries a patient's data, as SQL: the patient's
        own clinic always (any of `patient_fields` is in its register); any other party only
        while `window` holds (open, or closed less than HUB_ACCESS_DAYS_AFTER_CLOSE ago, see
        `clinic.workflow.open_or_closed_within`)."""
        # Asked of each row (a primary-key lookup), not as the list of the clinic's patients.
        own = alias(cls, "patient.need_to_know")
        mine = [
            row_exists(own.select(SQL("1")).where(own.id == f, own.clinic == organisation_id))
            for f in patient_fields
        ]
        return functools.reduce(operator.or_, mine) | window

    @classmethod
    def hub_visibility(cls, user: User):
        """Hub staff see a patient through a record of some domain that allows it."""
        return hub_visibility(cls.id, user)

    # Search -----
    @classmethod
    def search(cls, clinic_id: int, query: str, limit: int = SEARCH_LIMIT):
        """Patients of this clinic whose keys start with every typed word; [] for no words."""
        tokens = search_tokens(query)
        if not tokens:
            return []
        wanted = []
        if len(tokens) > 1 and not any(CJK.search(t) for t in tokens):
            # English words typed in the order of a name ("chan tai man", "tai man chan"): one
            # range of the whole-name keys answers it; other orders fall back to every word.
            wanted = cls._ids(clinic_id, [" ".join(tokens)], limit)
        if not wanted:
            wanted = cls._ids(clinic_id, tokens, limit)
        if not wanted:
            return []
        ids = {f"id{n}": patient_id for n, patient_id in enumerate(wanted)}
        return compiled_rows(
            ("search patients", clinic_id, len(ids)),
            lambda: (
                cls.select()
                .where(cls.id.in_([Given(name, 0) for name in ids]), cls.clinic == clinic_id)
                .order_by(cls.english_name, cls.chinese_name, cls.id)
            ),
            **ids,
        )

    @classmethod
    def _ids(cls, clinic_id: int, tokens: list[str], limit: int) -> list[int]:
        """Ids of up to `limit` patients with keys starting with every token, from one
        statement per clinic and number of tokens (the longest token drives it)."""
        tokens = dict(enumerate(sorted(tokens, key=len, reverse=True)))
        given = {f"t{n}": token for n, token in tokens.items()}

        def build():
            # A patient can match one word through two keys: over-fetch a little, keep the first.
            typed = [Given(name, token) for name, token in given.items()]
            return cls.matching_ids(clinic_id, typed).limit(limit * 2).tuples()

        rows = compiled_rows(("search ids", clinic_id, len(given), limit), build, **given)
        return list(dict.fromkeys(patient_id for (patient_id,) in rows))[:limit]

    @classmethod
    def matching_ids(cls, clinic_id: int, tokens: list["str | Given"]):
        """Ids of patients with a key starting with every token.

        The longest (most selective) token drives an index range scan; each other token is an
        index seek on (patient, key) for that candidate, so LIMIT stops the scan early.
        """
        first, *others = sorted(tokens, key=_typed_length, reverse=True)
        key = alias(PatientSearchKey, "search.first word")
        query = key.select(key.patient).where(key.clinic == clinic_id, prefix_range(key.key, first))
        for n, token in enumerate(others):
            other = alias(PatientSearchKey, f"search.word {n + 2}")
            query = query.where(
                fn.EXISTS(
                    other.select(SQL("1")).where(
                        other.patient == key.patient, prefix_range(other.key, token)
                    )
                )
            )
        return query

    def search_keys(self, documents) -> set[str]:
        keys = set()
        chinese = fold_chinese(self.chinese_name)
        keys.update(chinese[i:] for i in range(len(chinese)))  # 陈大文, 大文, 文
        words = english_words(self.english_name)
        keys.update(words)
        if len(words) > 1:  # the whole name, surname first (as on an HKID) and last
            keys.update((" ".join(words), " ".join(words[1:] + words[:1])))
        for document in documents:
            keys.add(document.number)
            keys.add(document.identity_key.split(":")[-1])
        for phone in (self.phone,):
            if phone:
                digits = phone.lstrip("+")
                keys.update((digits, digits[-4:]))  # the last four: what a front desk asks for
                for code in ("852", "853", "86"):
                    if digits.startswith(code):
                        keys.add(digits[len(code) :])
                        break
        return {k[:100] for k in keys if k}

    def refresh_search_keys(self, documents=None) -> None:
        """Rebuild the keys from the record and `documents` (default: read them)."""
        PatientSearchKey.delete().where(PatientSearchKey.patient == self.id).execute()
        documents = list(self.documents) if documents is None else documents
        rows = [
            {"patient": self.id, "clinic": self.clinic_id, "key": key}
            for key in sorted(self.search_keys(documents))
        ]
        if rows:
            PatientSearchKey.insert_many(rows).execute()

    @classmethod
    def without_last_four_key(cls):
        """Ids of patients with a phone but no key of its last four digits: saved before that
        key existed (each key lookup is a seek on the (patient, key) index)."""
        key = PatientSearchKey
        last_four = fn.SUBSTR(cls.phone, fn.LENGTH(cls.phone) - 3)
        has_it = key.select(SQL("1")).where(key.patient == cls.id, key.key == last_four)
        return cls.select(cls.id).where(
            cls.phone.is_null(False), fn.LENGTH(cls.phone) >= 5, ~fn.EXISTS(has_it)
        )

    @classmethod
    def reindex_search(cls, ids=None, batch: int = 500) -> int:
        """Rebuild the search keys of the patients `ids` selects (default: every patient),
        `batch` at a time in id order, each batch in one transaction; how many were rebuilt."""
        ids = cls.select(cls.id) if ids is None else ids
        done, after = 0, 0
        while chosen := [
            i for (i,) in ids.where(cls.id > after).order_by(cls.id).limit(batch).tuples()
        ]:
            documents = IdentityDocument.by_patient(chosen)
            rows = [
                {"patient": patient.id, "clinic": patient.clinic_id, "key": key}
                for patient in cls.select().where(cls.id.in_(chosen))
                for key in sorted(patient.search_keys(documents.get(patient.id, [])))
            ]
            with db.atomic():
                PatientSearchKey.delete().where(PatientSearchKey.patient.in_(chosen)).execute()
                for part in chunked(rows, 300):  # within SQLite's limit of bound values
                    PatientSearchKey.insert_many(part).execute()
            done, after = done + len(chosen), chosen[-1]
        return done

    # Duplicates -----
    @classmethod
    def possible_duplicates(
        cls, clinic_id: int, date_of_birth, chinese_name: str, english_name: str, exclude=None
    ):
        """Same clinic, same date of birth, and the same name in either script or word order."""
        names = []
        if fold_chinese(chinese_name):
            names.append(cls.chinese_name_folded == fold_chinese(chinese_name))
        if english_key(english_name):
            names.append(cls.english_name_key == english_key(english_name))
        if not names or not date_of_birth:
            return []
        condition = names[0] if len(names) == 1 else (names[0] | names[1])
        query = cls.select().where(
            cls.clinic == clinic_id, cls.date_of_birth == date_of_birth, condition
        )
        if exclude:
            query = query.where(cls.id != exclude)
        return list(query.order_by(cls.id).limit(5))

    # Writing -----
    def _fold_names(self) -> None:
        self.chinese_name_folded = fold_chinese(self.chinese_name) or None
        self.english_name_key = english_key(self.english_name) or None

    def save(self, *args, keys: bool = True, **kwargs):
        """Saved with its folded names and search keys, whoever saves it (demo, referrals…).

        keys=False: the caller rebuilds the keys once itself, after the documents. Bulk
        `Patient.update()`/`insert_many()` bypass this: call refresh_search_keys() after.
        """
        self._fold_names()
        saved = super().save(*args, **kwargs)
        if keys:
            self.refresh_search_keys()
        return saved

    @classmethod
    def register(cls, clinic_id: int, user, fields: dict, documents, consents=()):
        """A new patient with their documents (IntegrityError: a document is already there);
        the search keys are built once, from the record and its documents."""
        with db.atomic():
            patient = cls(clinic=clinic_id, created_by=user, **fields)
            patient.save(keys=False)
            rows = [IdentityDocument(patient=patient, clinic=clinic_id, **d) for d in documents]
            if rows:
                IdentityDocument.bulk_create(rows)
            for scope, note in consents:
                Consent.create(patient=patient, scope=scope, note=note, recorded_by=user)
            patient.refresh_search_keys(rows)
        return patient

    def change(self, fields: dict, documents) -> None:
        """Update the record and replace its documents (IntegrityError: a duplicate document)."""
        with db.atomic():
            for name, value in fields.items():
                setattr(self, name, value)
            self.updated_at = utcnow()
            self.save(keys=False)
            wanted = {(d["kind"], d["identity_key"]): d for d in documents}
            current = {(d.kind, d.identity_key): d for d in self.documents}
            gone = [d.id for key, d in current.items() if key not in wanted]
            if gone:
                IdentityDocument.delete().where(IdentityDocument.id.in_(gone)).execute()
            for key, document in wanted.items():
                found = current.get(key)
                if found is None:
                    IdentityDocument.insert(
                        patient=self, clinic=self.clinic_id, **document
                    ).execute()
                elif (found.number, found.country) != (document["number"], document["country"]):
                    IdentityDocument.update(
                        number=document["number"], country=document["country"]
                    ).where(IdentityDocument.id == found.id).execute()
            self.refresh_search_keys()

    def consent_history(self):
        """Newest first, with who recorded and who withdrew each (one query)."""
        recorder, withdrawer = alias(User, "consent.recorder"), alias(User, "consent.withdrawer")
        return (
            Consent.select(Consent, recorder, withdrawer)
            .join(recorder, on=Consent.recorded_by)
            .switch(Consent)
            .join(withdrawer, JOIN.LEFT_OUTER, on=Consent.withdrawn_by)
            .where(Consent.patient == Given("patient", self.id))
            .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        )

    @classmethod
    def for_page(cls, visible, patient_id: int, day: dt.date, key=None) -> "Patient | None":
        """One of `visible` with its documents (`.document_list`) and its open visit of `day`
        (`.open_visit`, or None), in one query: a row per document. `key`: what `visible` is
        built from (`clinic.db.compiled`), the statement then compiled once."""
        visit = alias(Visit, "patient.open_visit")
        document = alias(IdentityDocument, "patient.document")
        on_day = visit.day == Given("day", day)
        on_visit = (visit.patient == cls.id) & on_day & visit.state.in_(VISIT_OPEN)

        def query():
            return (
                visible.select_extend(visit, document)
                .join(visit, JOIN.LEFT_OUTER, on=on_visit, attr="open_visit")
                .switch(cls)
                .join(document, JOIN.LEFT_OUTER, on=(document.patient == cls.id), attr="document")
                .where(cls.id == Given("patient", patient_id))
                .order_by(document.id)
            )

        given = {"patient": patient_id, "day": day}
        rows = compiled_rows(("patient page", *key), query, **given) if key else list(query())
        if not rows:
            return None
        patient = rows[0]
        patient.document_list = [row.document for row in rows if row.document]
        return patient

    def has_consent(self, scope: str) -> bool:
        return (
            self.consents.where(Consent.scope == scope, Consent.withdrawn_at.is_null()).count() > 0
        )


class PatientSearchKey(BaseModel):
    """One folded key a patient is found by: a name from any character on, a word, a number."""

    patient = ForeignKeyField(Patient, on_delete="CASCADE", index=False)
    clinic = ForeignKeyField(Organisation, index=False)
    key = SearchKeyField(max_length=100)

    class Meta:
        indexes = (
            (("clinic", "key", "patient"), False),  # search: a prefix is a range of this index
            (("patient", "key"), False),  # the other words of a query; refresh by patient
        )


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

    def save(self, *args, **kwargs):
        saved = super().save(*args, **kwargs)
        Patient.get_by_id(self.patient_id).refresh_search_keys()
        return saved

    def delete_instance(self, *args, **kwargs):
        deleted = super().delete_instance(*args, **kwargs)
        Patient.get_by_id(self.patient_id).refresh_search_keys()
        return deleted

    @property
    def kind_label(self) -> str:
        return str(DOCUMENT_KINDS.get(self.kind, self.kind))

    @property
    def display_number(self) -> str:
        from clinic.patients.identity import format_document

        return format_document(self.kind, self.number)

    @classmethod
    def by_patient(cls, patient_ids) -> dict[int, list["IdentityDocument"]]:
        """The documents of these patients in one query, by patient id."""
        found: dict[int, list[IdentityDocument]] = {}
        ids = {f"id{n}": patient_id for n, patient_id in enumerate(patient_ids)}
        if ids:
            patients = [Given(name, 0) for name in ids]
            documents = compiled_rows(
                ("documents of patients", len(ids)),
                lambda: cls.select().where(cls.patient.in_(patients)).order_by(cls.id),
                **ids,
            )
            for document in documents:
                found.setdefault(document.patient_id, []).append(document)
        return found

    @classmethod
    def registered(cls, clinic_id: int, kind: str, identity_key: str) -> "IdentityDocument | None":
        return cls.get_or_none(
            cls.clinic == clinic_id, cls.kind == kind, cls.identity_key == identity_key
        )


class Consent(BaseModel):
    """Never edited: withdrawn, or superseded by a newer record."""

    patient = ForeignKeyField(Patient, backref="consents", on_delete="CASCADE")
    scope = CharField(choices=list(CONSENT_SCOPES.items()))
    organisation = ForeignKeyField(Organisation, null=True)  # the party it names, if any
    note = TextField(null=True)
    recorded_by = ForeignKeyField(User)
    recorded_at = DateTimeField(default=utcnow)
    withdrawn_by = ForeignKeyField(User, null=True)
    withdrawn_at = DateTimeField(null=True)

    @property
    def scope_label(self) -> str:
        label = str(CONSENT_SCOPES.get(self.scope, self.scope))
        return f"{label}: {self.organisation.label()}" if self.organisation_id else label

    @classmethod
    def naming(cls, patient_id: int, organisation_id: int) -> "Consent | None":
        """The patient's valid consent to share their record with this organisation."""
        return cls.get_or_none(
            cls.patient == patient_id,
            cls.scope == SHARE_WITH_CLINIC,
            cls.organisation == organisation_id,
            cls.withdrawn_at.is_null(),
        )

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    def withdraw(self, user: User) -> bool:
        """Compare-and-set: False when it was already withdrawn (by someone else)."""
        now = utcnow()
        changed = (
            Consent.update(withdrawn_by=user, withdrawn_at=now)
            .where(Consent.id == self.id, Consent.withdrawn_at.is_null())
            .execute()
        )
        if changed:
            self.withdrawn_by, self.withdrawn_at = user, now
        return bool(changed)


# The same-day queue -----
WAITING, WITH_DOCTOR, DONE, REFERRED, LEFT = "waiting", "with_doctor", "done", "referred", "left"
VISIT_STATES = {
    WAITING: _l("Waiting"),
    WITH_DOCTOR: _l("With doctor"),
    DONE: _l("Done"),
    REFERRED: _l("Referred"),
    LEFT: _l("Left"),
}
CLINIC_STAFF = (DOCTOR, NURSE)
VISIT_OPEN = (WAITING, WITH_DOCTOR)
VISIT_FLOW = Workflow(
    VISIT_STATES,
    (
        Move("call_in", (WAITING,), WITH_DOCTOR, "clinic", CLINIC_STAFF,
             _l("Call in"), _l("Called in.")),
        Move("finish", (WITH_DOCTOR,), DONE, "clinic", CLINIC_STAFF,
             _l("Finish"), _l("Visit finished.")),
        Move("refer", (WITH_DOCTOR,), REFERRED, "clinic", CLINIC_STAFF,
             _l("Mark as referred"), _l("Marked as referred.")),
        Move("leave", (WAITING, WITH_DOCTOR), LEFT, "clinic", CLINIC_STAFF,
             _l("Mark as left"), _l("Marked as left."), danger=True),
        # Undo: the move back, recorded like any other (a slip of the finger is not final).
        Move("back_to_waiting", (WITH_DOCTOR, LEFT), WAITING, "clinic", CLINIC_STAFF,
             _l("Back to waiting"), _l("Back in the waiting queue."), undo=True),
        # From "left", the undo returns to where the visit was (`Visit.refusal`).
        Move("undo_finish", (DONE, REFERRED, LEFT), WITH_DOCTOR, "clinic", CLINIC_STAFF,
             _l("Undo"), _l("Back with the doctor."), undo=True),
    ),
    owners={},
    open_states=VISIT_OPEN,
    conflict=_l(
        "Someone else changed this visit first: it is now “%(state)s”. Nothing was changed; "
        "check and try again."
    ),
)  # fmt: skip


class Visit(Stateful, BaseModel):
    """A patient checked in at their clinic for one day, moved along by compare-and-set."""

    clinic = ForeignKeyField(Organisation, index=False)
    patient = ForeignKeyField(Patient, backref="visits", on_delete="CASCADE")
    day = DateField()  # in the clinic's time zone
    state = CharField(default=WAITING, choices=list(VISIT_STATES.items()))
    version = IntegerField(default=1)
    checked_in_at = DateTimeField(default=utcnow)
    checked_in_by = ForeignKeyField(User, null=True)
    called_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    updated_by = ForeignKeyField(User, null=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("clinic", "day", "state"), False),)

    workflow = VISIT_FLOW
    audit_type = "visit"

    def audit_subject(self) -> tuple[str, int, str]:
        """Queue moves are filed under the patient, so their record shows every change."""
        return "patient", self.patient_id, f"visit {self.id} → {self.state}"

    @classmethod
    def queue(cls, clinic_id: int, day: dt.date):
        """Today's visits: open ones first in arrival order, then the finished ones."""
        return (
            cls.select(cls, Patient)
            .join(Patient)
            .where(cls.clinic == clinic_id, cls.day == day)
            .order_by(cls.finished_at.is_null(False), cls.checked_in_at, cls.id)
        )

    @classmethod
    def queue_version(cls, clinic_id: int, day: dt.date) -> str:
        """Changes whenever a visit is added or moved (each move adds 1 to one version)."""
        count, total = (
            cls.select(fn.COUNT(cls.id), fn.COALESCE(fn.SUM(cls.version), 0))
            .where(cls.clinic == clinic_id, cls.day == day)
            .scalar(as_tuple=True)
        )
        return f"{count}.{total}"

    @staticmethod
    def version_of(visits: list["Visit"]) -> str:
        """queue_version() of a whole day's visits already loaded (no second query)."""
        return f"{len(visits)}.{sum(visit.version for visit in visits)}"

    @classmethod
    def open_for(cls, patient: Patient, day: dt.date) -> "Visit | None":
        return cls.get_or_none(
            cls.patient == patient, cls.day == day, cls.state.in_(VISIT_FLOW.open_states)
        )

    def refusal(self, user: User, move) -> object | None:
        """Also: undoing "left" returns to the state the visit left from, with the doctor when
        it had been called in (`called_at` is kept until a move back to waiting), else waiting."""
        if (
            self.state == LEFT
            and move.undo
            and (move.target == WITH_DOCTOR) != bool(self.called_at)
        ):
            return _l("Not possible: it is %(state)s.", state=self.workflow.states[self.state])
        return super().refusal(user, move)

    def reopens_beside_another_visit(self) -> bool:
        """Undoing a finished visit must not open a second one (they were checked in again)."""
        if self.is_open:
            return False
        other = Visit.open_for(self.patient_id, self.day)
        return other is not None and other.id != self.id

    @classmethod
    def check_in(cls, patient: Patient, user: User, day: dt.date) -> "tuple[Visit, bool]":
        """(visit, created): a patient already waiting or with the doctor is not added twice."""
        with db.atomic("IMMEDIATE") if is_sqlite() else db.atomic():
            if not is_sqlite():
                # Serialise check-ins of one patient on PostgreSQL: lock the patient row.
                Patient.select(Patient.id).where(Patient.id == patient.id).for_update().execute()
            existing = cls.open_for(patient, day)
            if existing:
                return existing, False
            visit = cls.create(
                clinic=patient.clinic_id, patient=patient, day=day, checked_in_by=user
            )
            return visit, True

    def move(self, user: User, name: str, seen_version: int) -> None:
        """Move `name` from the state and version this user saw (Conflict if they changed)."""
        if seen_version != self.version:
            self._lost_the_race()
        move = self.check(user, name)
        if move.undo:
            if self.reopens_beside_another_visit():
                raise Refused(_l("This patient is in today's queue again: nothing was undone."))
            # The times the undone move set are cleared: to waiting, the call-in too.
            times = {"finished_at": None} | ({"called_at": None} if move.target == WAITING else {})
        else:
            times = {"called_at" if move.target == WITH_DOCTOR else "finished_at": utcnow()}
        self.transition(
            user,
            name,
            expect={"version": seen_version},
            version=seen_version + 1,
            updated_by=user,
            **times,
        )


class VisitEvent(TimelineEvent):
    """Append-only timeline of a visit: every queue move, who made it and when."""

    visit = ForeignKeyField(Visit, backref="events", on_delete="CASCADE")

    record_field = "visit"
    states = VISIT_STATES


Visit.timeline_model = VisitEvent


PATIENT_MODELS = [Patient, PatientSearchKey, IdentityDocument, Consent, Visit, VisitEvent]
