"""Organisations, users, their sessions and the audit log."""

import datetime as dt
import hashlib
import json
import operator
import secrets
from collections.abc import Callable
from functools import reduce
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context, has_request_context, request
from flask_login import UserMixin
from peewee import (
    JOIN,
    SQL,
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    IntegrityError,
    Model,
    TextField,
)
from werkzeug.security import check_password_hash, generate_password_hash

from clinic.db import Given, compiled, compiled_rows, db, utcnow
from clinic.translation import language
from clinic.translation import lazy_gettext as _l

CLINIC, HUB = "clinic", "hub"
ORGANISATION_KINDS = {CLINIC: _l("Clinic"), HUB: _l("Hub hospital")}

DOCTOR, NURSE = "doctor", "nurse"
COORDINATOR, SPECIALIST, PHARMACIST = "coordinator", "specialist", "pharmacist"
ADMIN = "admin"
ROLES = {
    DOCTOR: _l("Doctor"),
    NURSE: _l("Nurse"),
    COORDINATOR: _l("Referral coordinator"),
    SPECIALIST: _l("Specialist"),
    PHARMACIST: _l("Pharmacist"),
    ADMIN: _l("Administrator"),
}
ROLES_BY_KIND = {CLINIC: (DOCTOR, NURSE, ADMIN), HUB: (COORDINATOR, SPECIALIST, PHARMACIST, ADMIN)}

LANGUAGES = {"en": "English", "zh_Hant_HK": "繁體中文", "zh_Hans_CN": "简体中文"}

# Checked against when the e-mail is unknown, so both failures take the same time.
_UNKNOWN_USER_HASH = generate_password_hash(secrets.token_hex(16))


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class NamedInThreeScripts:
    """A name in English, Traditional and Simplified Chinese; label() picks the reader's."""

    def label(self, locale=None) -> str:
        locale = str(locale) if locale else language()
        if locale.startswith("zh_Hans"):
            return self.name_zh_hans or self.name
        if locale.startswith("zh"):
            return self.name_zh_hant or self.name
        return self.name

    def __str__(self) -> str:
        return self.label()


class Organisation(NamedInThreeScripts, BaseModel):
    name = CharField(unique=True)
    name_zh_hant = CharField(null=True)
    name_zh_hans = CharField(null=True)
    kind = CharField(choices=list(ORGANISATION_KINDS.items()))
    timezone = CharField(null=True)
    address = TextField(null=True)  # shown on letters
    phone = CharField(null=True)
    # A clinic may require the second factor of its staff (hub staff and admins always need it).
    mfa_required = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)

    @property
    def kind_label(self) -> str:
        return str(ORGANISATION_KINDS[self.kind])

    @property
    def is_hub(self) -> bool:
        return self.kind == HUB

    @property
    def is_clinic(self) -> bool:
        return self.kind == CLINIC

    @property
    def zone_name(self) -> str:
        """This organisation's time zone, else the deployment's (CLINIC_TIMEZONE)."""
        default = current_app.config["CLINIC_TIMEZONE"] if has_app_context() else "Asia/Hong_Kong"
        return self.timezone or default

    def today(self) -> dt.date:
        """The date on this organisation's calendar."""
        return dt.datetime.now(ZoneInfo(self.zone_name)).date()

    @classmethod
    def by_name(cls, name: str) -> "Organisation | None":
        return cls.get_or_none(cls.name == name)

    def hubs(self):
        """The hubs a clinic refers to."""
        return self._linked(ClinicHub.hub, ClinicHub.clinic)

    def clinics(self):
        """The clinics that refer to a hub."""
        return self._linked(ClinicHub.clinic, ClinicHub.hub)

    def _linked(self, other_side, own_side):
        return (
            Organisation.select()
            .join(ClinicHub, on=other_side)
            .where(own_side == self)
            .order_by(Organisation.name)
        )

    @classmethod
    def governed_by(cls, admin: "User"):
        """The organisations this administrator governs: their own; an administrator of a hub
        also governs the clinics of its alliance (the clinics that refer to it). Nobody else
        governs any."""
        query = cls.select().order_by(cls.kind.desc(), cls.name)
        if not admin.has_role(ADMIN):
            return query.where(SQL("1 = 0"))
        own = cls.id == admin.organisation_id
        if admin.organisation.is_hub:
            alliance = ClinicHub.select(ClinicHub.clinic).where(
                ClinicHub.hub == admin.organisation_id
            )
            return query.where(own | cls.id.in_(alliance))
        return query.where(own)

    def link_hub(self, hub: "Organisation") -> None:
        ClinicHub.insert(clinic=self, hub=hub).on_conflict_ignore().execute()

    def set_hubs(self, hub_ids: list[int]) -> None:
        """Exactly these hubs, no others."""
        stale = ClinicHub.clinic == self
        if hub_ids:
            stale &= ClinicHub.hub.not_in(hub_ids)
        ClinicHub.delete().where(stale).execute()
        for hub_id in hub_ids:
            self.link_hub(hub_id)


class ClinicHub(BaseModel):
    clinic = ForeignKeyField(Organisation, backref="hub_links")
    hub = ForeignKeyField(Organisation, backref="clinic_links")

    class Meta:
        indexes = ((("clinic", "hub"), True),)


class User(UserMixin, BaseModel):
    email = CharField(unique=True)
    name = CharField()
    role = CharField(choices=list(ROLES.items()))
    organisation = ForeignKeyField(Organisation, backref="users")
    language = CharField(null=True)
    active = BooleanField(default=True)
    password_hash = CharField()
    # Set by an administrator's reset: the temporary password must be changed at the next login.
    must_change_password = BooleanField(default=False)
    totp_secret = CharField(null=True)  # the second factor (RFC 6238), once enrolled
    totp_last_step = IntegerField(null=True)  # the time step of the last code used: no replay
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "users"

    @property
    def needs_second_factor(self) -> bool:
        """Admins and hub staff always; clinic staff when their clinic asks for it."""
        organisation = self.organisation
        return self.role == ADMIN or organisation.is_hub or organisation.mfa_required

    @property
    def has_second_factor(self) -> bool:
        return bool(self.totp_secret)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def role_label(self) -> str:
        return str(ROLES[self.role])

    @property
    def reader_key(self) -> tuple:
        """All a statement shaped by who reads it is built from (their need to know, counts):
        the key it is compiled once under (`clinic.db.compiled`)."""
        return (self.id, self.role, self.organisation_id, self.organisation.kind)

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    def set_password(self, password: str) -> None:
        method = current_app.config["PASSWORD_HASH_METHOD"] if has_app_context() else "scrypt"
        self.password_hash = generate_password_hash(password, method=method)

    def change_password(self, password: str) -> None:
        """The user's own choice: any temporary password is gone."""
        self.set_password(password)
        self.must_change_password = False
        self.save(only=[User.password_hash, User.must_change_password])

    def reset_password(self) -> str:
        """A printed temporary password, to be changed at first login; sessions end."""
        temporary = secrets.token_urlsafe(9)
        with db.atomic():
            self.set_password(temporary)
            self.must_change_password = True
            self.save(only=[User.password_hash, User.must_change_password])
            UserSession.end_all_for(self)
        return temporary

    @classmethod
    def governed_by(cls, admin: "User"):
        organisations = Organisation.governed_by(admin).select(Organisation.id)
        return (
            cls.select(cls, Organisation)
            .join(Organisation)
            .where(cls.organisation.in_(organisations))
            .order_by(Organisation.name, cls.name)
        )

    @classmethod
    def create_with_password(cls, password: str, **fields) -> "User":
        user = cls(email=fields.pop("email").strip().lower(), **fields)
        user.set_password(password)
        user.save()
        return user

    @classmethod
    def authenticate(cls, email: str, password: str) -> "User | None":
        """The active user with these credentials; unknown and wrong cost the same time."""
        user = cls.get_or_none(cls.email == email.strip().lower())
        stored = user.password_hash if user else _UNKNOWN_USER_HASH
        if check_password_hash(stored, password) and user and user.active:
            return user
        return None

    def deactivate(self) -> None:
        """Takes effect on the user's next request, on every server."""
        with db.atomic():
            User.update(active=False).where(User.id == self.id).execute()
            self.active = False
            UserSession.end_all_for(self)

    def reactivate(self) -> None:
        User.update(active=True).where(User.id == self.id).execute()
        self.active = True

    def move_to(self, organisation: Organisation, role: str | None = None) -> None:
        """Another organisation or role: logged out everywhere, to log in with the new rights."""
        role = role or self.role
        with db.atomic():
            User.update(organisation=organisation, role=role).where(User.id == self.id).execute()
            self.organisation, self.role = organisation, role
            UserSession.end_all_for(self)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserSession(BaseModel):
    """A login. The cookie holds a random token; only its hash is stored."""

    token_hash = CharField(unique=True)
    user = ForeignKeyField(User, backref="sessions")
    organisation = ForeignKeyField(Organisation)
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow)
    ended_at = DateTimeField(null=True, index=True)
    ip = CharField(null=True)
    user_agent = CharField(null=True)

    @classmethod
    def start(cls, user: User, ip: str | None, user_agent: str | None) -> str:
        token = secrets.token_urlsafe(32)
        cls.create(
            token_hash=_token_hash(token),
            user=user,
            organisation=user.organisation_id,
            ip=ip,
            user_agent=(user_agent or "")[:255],
        )
        return token

    @classmethod
    def live(cls, token: str, idle: dt.timedelta, lifetime: dt.timedelta) -> "UserSession | None":
        """The open session for this token, ended here if idle or too old."""
        token_hash = _token_hash(token)

        def query():
            return (
                cls.select(cls, User, Organisation)
                .join(User)
                .join(Organisation, on=User.organisation)
                .where(cls.token_hash == Given("token_hash", token_hash), cls.ended_at.is_null())
                .limit(1)
            )

        rows = compiled_rows(("live session",), query, token_hash=token_hash)
        if not rows:
            return None
        record = rows[0]
        now = utcnow()
        if now - record.last_seen_at > idle or now - record.created_at > lifetime:
            record.end()
            return None
        return record

    @classmethod
    def ended(cls, token: str) -> "UserSession | None":
        """The session this token belonged to, if it has ended (timed out, closed by an admin)."""
        return cls.get_or_none(cls.token_hash == _token_hash(token), cls.ended_at.is_null(False))

    def touch(self, now_please: bool = False) -> None:
        """Record activity, at most once a minute to spare the database (unless asked now)."""
        now = utcnow()
        if now_please or now - self.last_seen_at > dt.timedelta(minutes=1):
            UserSession.update(last_seen_at=now).where(UserSession.id == self.id).execute()

    def end(self) -> None:
        UserSession.update(ended_at=utcnow()).where(
            UserSession.id == self.id, UserSession.ended_at.is_null()
        ).execute()

    @classmethod
    def end_all_for(cls, user: User) -> None:
        cls.update(ended_at=utcnow()).where(cls.user == user, cls.ended_at.is_null()).execute()


def _as_text(ids):
    """Ids as the audit log stores them (text): a list, or a query of ids cast in SQL."""
    if isinstance(ids, list):
        return [str(i) for i in ids]
    return ids.select(ids.selected_columns[0].cast("VARCHAR"))


class PendingSubmission(BaseModel):
    """A form sent just after the session timed out, kept on the server (never in the browser)
    until the same user logs in again and finds it back in the form."""

    KEPT_FOR = dt.timedelta(hours=12)

    user = ForeignKeyField(User, on_delete="CASCADE")
    path = CharField()
    data = TextField()  # JSON: [[name, value], ...], as the form sent it
    created_at = DateTimeField(default=utcnow)

    @classmethod
    def keep(cls, user_id: int, path: str, fields: list[tuple[str, str]]) -> None:
        with db.atomic():
            cls.delete().where(cls.user == user_id, cls.path == path).execute()
            cls.create(user=user_id, path=path, data=json.dumps(fields, ensure_ascii=False))

    @classmethod
    def waiting(cls, user_id: int, path: str) -> bool:
        since = utcnow() - cls.KEPT_FOR
        return (
            cls.select()
            .where(cls.user == user_id, cls.path == path, cls.created_at > since)
            .exists()
        )

    @classmethod
    def take(cls, user_id: int, path: str) -> list[tuple[str, str]] | None:
        """The kept fields, once: taking them deletes them."""
        since = utcnow() - cls.KEPT_FOR
        with db.atomic():
            kept = (
                cls.select()
                .where(cls.user == user_id, cls.path == path, cls.created_at > since)
                .order_by(cls.id.desc())
                .first()
            )
            cls.delete().where(cls.user == user_id, cls.path == path).execute()
        return [tuple(pair) for pair in json.loads(kept.data)] if kept else None


class AuditEvent(BaseModel):
    """Append-only (database triggers refuse changes): who did what to which record, when, where."""

    at = DateTimeField(default=utcnow, index=True)
    user = ForeignKeyField(User, null=True)
    organisation = ForeignKeyField(Organisation, null=True)
    action = CharField(index=True)
    object_type = CharField(null=True)
    object_id = CharField(null=True)
    detail = TextField(null=True)
    ip = CharField(null=True)

    class Meta:
        indexes = ((("object_type", "object_id"), False),)

    @classmethod
    def write(
        cls,
        user: "User | None",
        action: str,
        object_type: str | None = None,
        object_id=None,
        detail: str | None = None,
    ) -> None:
        """Append one event; call it inside the transaction of the change it records."""
        fields = {
            "at": utcnow(),
            "user": user.id if user else None,
            "organisation": user.organisation_id if user else None,
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "detail": detail,
            "ip": request.remote_addr if has_request_context() else None,
        }
        # Only the values change from one event to the next: one INSERT is compiled for all.
        columns = cls._meta.fields
        sql, params = compiled(
            ("audit event",),
            lambda: cls.insert({columns[name]: Given(name, None) for name in fields}),
            **{name: columns[name].db_value(value) for name, value in fields.items()},
        )
        db.execute_sql(sql, params)

    @classmethod
    def visible_to(cls, admin: "User"):
        """The events an administrator reads: those of the organisations they govern; events
        of nobody's organisation (failed logins of unknown e-mails) only to hub administrators."""
        governed = cls.organisation.in_(Organisation.governed_by(admin).select(Organisation.id))
        if admin.has_role(ADMIN) and admin.organisation.is_hub:
            return cls.select().where(governed | cls.organisation.is_null())
        return cls.select().where(governed)

    @classmethod
    def with_people(cls, query):
        """The events with who did it and their organisation (one query)."""
        return (
            query.select(cls, User, Organisation)
            .join(User, on=cls.user, join_type=JOIN.LEFT_OUTER)
            .switch(cls)
            .join(Organisation, on=cls.organisation, join_type=JOIN.LEFT_OUTER)
        )

    @classmethod
    def search(
        cls, admin: "User", action="", object_type="", object_id="", user_id="", since=None,
        until=None, patient="",
    ):  # fmt: skip
        """The events this administrator reads, newest first; `since`/`until` are UTC bounds
        (until excluded)."""
        query = cls.with_people(cls.visible_to(admin)).order_by(cls.at.desc(), cls.id.desc())
        if action:
            query = query.where(cls.action == action)
        if object_type:
            query = query.where(cls.object_type == object_type)
        if object_id:
            query = query.where(cls.object_id == str(object_id))
        if str(patient).isdigit():  # the events about this patient's record
            query = query.where(cls.object_type == "patient", cls.object_id == str(int(patient)))
        if str(user_id).isdigit():
            query = query.where(cls.user == int(user_id))
        if since:
            query = query.where(cls.at >= since)
        if until:
            query = query.where(cls.at < until)
        return query

    @classmethod
    def about(cls, records: dict[str, list], *also):
        """Events about these records ({object type: [ids]}) or matching `also`, oldest first."""
        conditions = [
            (cls.object_type == kind) & cls.object_id.in_(_as_text(ids))
            for kind, ids in records.items()
        ] + list(also)
        query = cls.with_people(cls.select()).where(reduce(operator.or_, conditions))
        return query.order_by(cls.at, cls.id)

    @classmethod
    def people(cls, admin: "User") -> list["User"]:
        """Everyone who appears in the log this administrator reads, by name (for the filter)."""
        seen = cls.visible_to(admin).select(cls.user).where(cls.user.is_null(False)).distinct()
        return list(User.select().where(User.id.in_(seen)).order_by(User.name))

    @classmethod
    def record_types(cls, admin: "User") -> tuple[list[str], list[int]]:
        """(record types, ids of the patients) in the log this administrator reads, for the
        filters, in one query (an administrator reads no patient record: ids, not names)."""
        patient = Case(None, [(cls.object_type == "patient", cls.object_id)], None)
        rows = (
            cls.visible_to(admin)
            .select(cls.object_type, patient)
            .where(cls.object_type.is_null(False))
            .distinct()
            .tuples()
        )
        rows = list(rows)
        patients = {int(p) for _, p in rows if p and p.isdigit() and len(p) < 19}
        return sorted({kind for kind, _ in rows}), sorted(patients)

    @classmethod
    def actions(cls, admin: "User") -> list[str]:
        query = cls.visible_to(admin).select(cls.action).distinct().order_by(cls.action)
        return [row.action for row in query]


class TimelineEvent(BaseModel):
    """Append-only: who moved a record, when, from which state to which, and why.

    Each workflow has its own table: a subclass adding the foreign key named `record_field`.
    """

    at = DateTimeField(default=utcnow)
    user = ForeignKeyField(User, null=True)
    organisation = ForeignKeyField(Organisation, null=True)
    action = CharField()
    from_state = CharField(null=True)
    to_state = CharField()
    note = TextField(null=True)

    record_field = ""
    states: dict = {}

    @property
    def to_label(self) -> str:
        return str(self.states.get(self.to_state, self.to_state))

    @property
    def from_label(self) -> str:
        return str(self.states.get(self.from_state, "")) if self.from_state else ""


class SubmissionKey(BaseModel):
    """A create form's one-time key and what its first submission made (the URL to go to)."""

    key = CharField(unique=True, max_length=64)
    user = ForeignKeyField(User)
    created_at = DateTimeField(default=utcnow)
    result_url = CharField(null=True)

    @classmethod
    def result_of(cls, key: str | None, user) -> str | None:
        """Where an earlier submission of this key went (None: it is the first)."""
        if not key:
            return None
        return cls.select(cls.result_url).where(cls.key == key, cls.user == user).scalar()

    @classmethod
    def once(cls, key: str | None, user: User, create: Callable[[], str]) -> str:
        """The URL of what this submission made: `create()` runs only for the first
        submission of `key` (a double click, a retry on a slow link gets the first result).

        The key is written in the same transaction as what `create` makes, so a twin arriving
        at the same moment waits for it (the unique index) and then finds its result.
        """
        if not key:
            return create()
        from clinic.db import write_transaction

        try:
            with write_transaction():
                found = cls.get_or_none(cls.key == key, cls.user == user)
                if found is not None and found.result_url:
                    return found.result_url
                cls.create(key=key, user=user)
                url = create()
                cls.update(result_url=url).where(cls.key == key).execute()
                return url
        except IntegrityError:
            found = cls.get_or_none(cls.key == key, cls.user == user)
            if found is None or not found.result_url:
                raise  # not a twin: what `create` refused (a duplicate document …)
            return found.result_url


CORE_MODELS = [
    Organisation, ClinicHub, User, UserSession, PendingSubmission, AuditEvent, SubmissionKey,
]  # fmt: skip
