"""Two-way referral: hub services, referrals, their state machine and append-only timeline.

Every move is one method: it checks who may make it, then does a compare-and-set on the state
the user saw (`UPDATE … WHERE id = ? AND state = ?`) inside a write transaction and writes
exactly one timeline event. A second, concurrent move of the same referral updates no row and
loses cleanly with the current state.

No black holes: every open referral has an owner (the organisation whose move it is) and a
due-by time from the priority's response target.
"""

import datetime as dt

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from peewee import (
    JOIN,
    BooleanField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegrityError,
    TextField,
    fn,
)

from clinic.db import utcnow, write_transaction
from clinic.models.core import (
    COORDINATOR,
    DOCTOR,
    SPECIALIST,
    BaseModel,
    NamedInThreeScripts,
    Organisation,
    User,
)
from clinic.models.patients import Consent, IdentityDocument, Patient

__all__ = [
    "DIRECTIONS", "MOBILITY", "PRIORITIES", "REFERRAL_MODELS", "STATES", "Conflict", "HubService",
    "Referral", "ReferralEvent", "Refused", "TransitionError",
]  # fmt: skip

UP, DOWN = "up", "down"
DIRECTIONS = {UP: _l("Up-referral"), DOWN: _l("Down-referral")}

ROUTINE, URGENT, GREEN = "routine", "urgent", "green"
PRIORITIES = {ROUTINE: _l("Routine"), URGENT: _l("Urgent"), GREEN: _l("Green channel")}
PRIORITY_RANK = {GREEN: 0, URGENT: 1, ROUTINE: 2}
DEFAULT_TARGET_HOURS = {GREEN: 2, URGENT: 24, ROUTINE: 72}

DRAFT, SUBMITTED, ACCEPTED, DECLINED = "draft", "submitted", "accepted", "declined"
INFO_REQUESTED, CANCELLED, NO_SHOW = "info_requested", "cancelled", "no_show"
COMPLETED, CLOSED = "completed", "closed"
STATES = {
    DRAFT: _l("Draft"),
    SUBMITTED: _l("Submitted"),
    INFO_REQUESTED: _l("Information requested"),
    ACCEPTED: _l("Accepted"),
    DECLINED: _l("Declined"),
    CANCELLED: _l("Cancelled"),
    NO_SHOW: _l("No-show"),
    COMPLETED: _l("Back-referral written"),
    CLOSED: _l("Closed"),
}
FINAL_STATES = (DECLINED, CANCELLED, NO_SHOW, CLOSED)

# Whose move it is in each open state: the sending ("from") or receiving ("to") organisation.
OWNER_SIDE = {
    UP: {DRAFT: "from", SUBMITTED: "to", INFO_REQUESTED: "from", ACCEPTED: "to", COMPLETED: "from"},
    DOWN: {DRAFT: "from", SUBMITTED: "to"},
}

# Who moves what: (direction → move → (side, roles, from states)), as DESIGN.md §2 lists them.
MOVES = {
    UP: {
        "submit": ("from", (DOCTOR,), (DRAFT,)),
        "accept": ("to", (COORDINATOR,), (SUBMITTED,)),
        "decline": ("to", (COORDINATOR,), (SUBMITTED,)),
        "request_info": ("to", (COORDINATOR, SPECIALIST), (SUBMITTED, ACCEPTED)),
        "answer": ("from", (DOCTOR,), (INFO_REQUESTED,)),
        "cancel": ("from", (DOCTOR,), (DRAFT, SUBMITTED, INFO_REQUESTED)),
        "no_show": ("to", (COORDINATOR, SPECIALIST), (ACCEPTED,)),
        "back_referral": ("to", (SPECIALIST,), (ACCEPTED,)),
        "acknowledge": ("from", (DOCTOR,), (COMPLETED,)),
    },
    DOWN: {
        "submit": ("from", (SPECIALIST,), (DRAFT,)),
        "accept_down": ("to", (DOCTOR,), (SUBMITTED,)),
        "decline": ("to", (DOCTOR,), (SUBMITTED,)),
        "cancel": ("from", (SPECIALIST,), (DRAFT, SUBMITTED)),
    },
}

MOBILITY = {
    "walking": _l("Walks unaided"),
    "assisted": _l("Walks with help"),
    "wheelchair": _l("Wheelchair"),
    "stretcher": _l("Stretcher"),
}


class TransitionError(Exception):
    """A move that was refused; `message` is shown to the user in their language."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class Refused(TransitionError):
    """Not this user's move (role or organisation), or not possible from this state."""


class Conflict(TransitionError):
    """Someone else moved the referral first; the referral now shows the current state."""


class HubService(NamedInThreeScripts, BaseModel):
    hub = ForeignKeyField(Organisation, backref="services")
    code = CharField()
    name = CharField()
    name_zh_hant = CharField()
    name_zh_hans = CharField()
    cross_border = BooleanField(default=False)  # the destination needs cross-border consent
    active = BooleanField(default=True)

    class Meta:
        indexes = ((("hub", "code"), True),)

    @classmethod
    def for_hubs(cls, hubs):
        return (
            cls.select(cls, Organisation)
            .join(Organisation)
            .where(cls.hub.in_(hubs), cls.active)
            .order_by(Organisation.name, cls.id)
        )


class Referral(BaseModel):
    direction = CharField(choices=list(DIRECTIONS.items()), default=UP)
    patient = ForeignKeyField(Patient, backref="referrals", index=True)
    from_org = ForeignKeyField(Organisation, backref="referrals_sent")
    to_org = ForeignKeyField(Organisation, backref="referrals_received")
    service = ForeignKeyField(HubService, null=True)
    parent = ForeignKeyField("self", null=True, backref="down_referrals")
    priority = CharField(choices=list(PRIORITIES.items()), default=ROUTINE)
    reason = TextField()
    clinical_summary = TextField(null=True)
    working_diagnosis = CharField(null=True)
    icd10 = CharField(null=True)
    results = TextField(null=True)
    medications = TextField(null=True)
    allergies = TextField(null=True)
    direct_billing = BooleanField(default=False)
    insurer = CharField(null=True)
    transport_needed = BooleanField(default=False)
    mobility = CharField(null=True)
    escort = BooleanField(default=False)
    pickup_notes = TextField(null=True)
    consent = ForeignKeyField(Consent, null=True)
    # Acceptance
    appointment_at = DateTimeField(null=True)
    appointment_place = CharField(null=True)
    appointment_instructions = TextField(null=True)
    transport_arranged = BooleanField(default=False)
    decline_reason = TextField(null=True)
    cancel_reason = TextField(null=True)
    question = TextField(null=True)
    answer = TextField(null=True)
    decided_by = ForeignKeyField(User, null=True)
    # Back-referral (回覆轉介摘要), signed by the named clinician
    br_diagnosis = TextField(null=True)
    br_treatment = TextField(null=True)
    br_medication_changes = TextField(null=True)
    br_follow_up_plan = TextField(null=True)
    br_follow_up_due = DateField(null=True)
    br_signed_by = ForeignKeyField(User, null=True)
    br_signed_at = DateTimeField(null=True)
    # Down-referral: the record in the receiving clinic's register, once accepted
    clinic_patient = ForeignKeyField(Patient, null=True)
    # Workflow
    state = CharField(choices=list(STATES.items()), default=DRAFT, index=True)
    owner = ForeignKeyField(Organisation, null=True, index=True)
    due_by = DateTimeField(null=True)
    created_by = ForeignKeyField(User, backref="referrals_created")
    created_at = DateTimeField(default=utcnow)
    submitted_at = DateTimeField(null=True)
    updated_at = DateTimeField(default=utcnow)

    # ---- labels -----------------------------------------------------------------------------
    @property
    def state_label(self) -> str:
        return str(STATES[self.state])

    @property
    def priority_label(self) -> str:
        return str(PRIORITIES[self.priority])

    @property
    def direction_label(self) -> str:
        return str(DIRECTIONS[self.direction])

    @property
    def is_open(self) -> bool:
        return self.state in OWNER_SIDE[self.direction]

    @property
    def is_overdue(self) -> bool:
        return bool(self.is_open and self.due_by and self.due_by < utcnow())

    def side_of(self, organisation_id) -> str | None:
        if organisation_id == self.from_org_id:
            return "from"
        if organisation_id == self.to_org_id:
            return "to"
        return None

    # ---- queries ----------------------------------------------------------------------------
    @classmethod
    def visible_to(cls, user: User):
        """Referrals this user's organisation sent, or received once submitted."""
        organisation = user.organisation_id
        return cls.select().where(
            (cls.from_org == organisation) | ((cls.to_org == organisation) & (cls.state != DRAFT))
        )

    @classmethod
    def worklist_order(cls, query):
        """Overdue first, then green channel, urgent, routine, then the oldest."""
        now = utcnow()
        overdue = Case(None, [((cls.owner.is_null(False) & (cls.due_by < now)), 0)], 1)
        priority = Case(cls.priority, list(PRIORITY_RANK.items()), 3)
        return query.order_by(overdue, priority, fn.COALESCE(cls.submitted_at, cls.created_at))

    @classmethod
    def listing(cls, user: User, state="", priority="", service="", org="", needs=False):
        FromOrg = Organisation.alias()
        ToOrg = Organisation.alias()
        query = (
            cls.visible_to(user)
            .select_extend(Patient, HubService, FromOrg, ToOrg)
            .join(Patient, on=cls.patient)
            .switch(cls)
            .join(HubService, JOIN.LEFT_OUTER, on=cls.service)
            .switch(cls)
            .join(FromOrg, on=cls.from_org)
            .switch(cls)
            .join(ToOrg, on=cls.to_org)
        )
        if state:
            query = query.where(cls.state == state)
        if priority:
            query = query.where(cls.priority == priority)
        if str(service).isdigit():
            query = query.where(cls.service == int(service))
        if str(org).isdigit():
            query = query.where((cls.from_org == int(org)) | (cls.to_org == int(org)))
        if needs:  # the same rows the navigation count counts
            query = query.where(cls.owner == user.organisation_id, cls.state != DRAFT)
        return cls.worklist_order(query)

    @classmethod
    def awaiting(cls, user: User):
        """Open referrals whose move is this user's organisation's (drafts are not counted)."""
        return cls.visible_to(user).where(cls.owner == user.organisation_id, cls.state != DRAFT)

    @classmethod
    def fingerprint(cls, query) -> str:
        """Changes whenever a row of the query changes: polls answer 204 when it is the same."""
        row = query.select(fn.COUNT(cls.id), fn.MAX(cls.updated_at)).order_by().tuples().first()
        count, latest = row or (0, None)
        return f"{count}-{latest.timestamp() if hasattr(latest, 'timestamp') else latest or 0}"

    @classmethod
    def patient_ids_visible_to_hub(cls, hub_id, days: int | None = None):
        """Patients a hub may see: a referral with them is addressed to (or from) the hub and is
        open, or closed less than `days` ago (config HUB_ACCESS_DAYS_AFTER_CLOSE)."""
        if days is None:
            days = current_app.config.get("HUB_ACCESS_DAYS_AFTER_CLOSE", 30)
        since = utcnow() - dt.timedelta(days=days)
        open_states = [s for s in STATES if s not in FINAL_STATES and s != DRAFT]
        return cls.select(cls.patient).where(
            (cls.to_org == hub_id) | (cls.from_org == hub_id),
            cls.state != DRAFT,
            cls.state.in_(open_states) | (cls.updated_at >= since),
        )

    def timeline(self):
        return (
            ReferralEvent.select(ReferralEvent, User)
            .join(User, JOIN.LEFT_OUTER)
            .where(ReferralEvent.referral == self)
            .order_by(ReferralEvent.at, ReferralEvent.id)
        )

    # ---- creation ---------------------------------------------------------------------------
    @classmethod
    def create_draft(cls, user: User, patient: Patient, **fields) -> "Referral":
        """A new referral in draft, owned by the sending organisation."""
        direction = fields.get("direction", UP)
        if direction == UP and not (user.has_role(DOCTOR) and user.organisation.is_clinic):
            raise Refused(_l("Only a clinic doctor can write a referral."))
        if direction == DOWN and not (user.has_role(SPECIALIST) and user.organisation.is_hub):
            raise Refused(_l("Only a hub specialist can write a down-referral."))
        now = utcnow()
        with write_transaction():
            referral = cls.create(
                patient=patient,
                from_org=user.organisation_id,
                created_by=user,
                state=DRAFT,
                owner=user.organisation_id,
                due_by=now + cls.target(fields.get("priority", ROUTINE)),
                created_at=now,
                updated_at=now,
                **fields,
            )
            ReferralEvent.create(
                referral=referral, user=user, organisation=user.organisation_id, action="create",
                from_state=None, to_state=DRAFT, at=now,
            )  # fmt: skip
        return referral

    def update_draft(self, user: User, **fields) -> None:
        """Change a draft before it is sent (not a move: the timeline is unchanged)."""
        self._check(user, "submit")
        fields["updated_at"] = now = utcnow()
        if "priority" in fields:
            fields["due_by"] = now + self.target(fields["priority"])
        with write_transaction():
            changed = (
                Referral.update(**fields)
                .where(Referral.id == self.id, Referral.state == DRAFT)
                .execute()
            )
        if changed != 1:
            raise Conflict(_l("This referral has been sent already; it can no longer be edited."))
        for name, value in fields.items():
            setattr(self, name, value)

    @staticmethod
    def target(priority: str) -> dt.timedelta:
        hours = DEFAULT_TARGET_HOURS
        if has_app_context():
            hours = current_app.config.get("REFERRAL_TARGET_HOURS", hours)
        return dt.timedelta(hours=hours[priority])

    # ---- the state machine ------------------------------------------------------------------
    def _check(self, user: User, move: str) -> None:
        rule = MOVES[self.direction].get(move)
        if rule is None or self.state not in rule[2]:
            raise Refused(_l("Not possible: the referral is %(state)s.", state=STATES[self.state]))
        side, roles, _states = rule
        if user.organisation_id != getattr(self, f"{side}_org_id"):
            raise Refused(_l("This referral is not yours to move."))
        if not user.has_role(*roles):
            raise Refused(_l("Your role cannot make this move."))

    def moves_for(self, user: User) -> list[str]:
        """The moves this user may make now (for showing the right buttons)."""
        allowed = []
        for move in MOVES[self.direction]:
            try:
                self._check(user, move)
            except Refused:
                continue
            allowed.append(move)
        return allowed

    def _move(self, user: User, action: str, to: str, note: str | None = None, **fields) -> None:
        """Compare-and-set from the state this object holds to `to`, plus one timeline event."""
        now = utcnow()
        side = OWNER_SIDE[self.direction].get(to)
        owner = getattr(self, f"{side}_org_id") if side else None
        due_from = fields.pop("due_from", None) or now
        due_by = due_from + self.target(self.priority) if side else None
        values = {"state": to, "owner": owner, "due_by": due_by, "updated_at": now, **fields}
        with write_transaction():
            changed = (
                Referral.update(**values)
                .where(Referral.id == self.id, Referral.state == self.state)
                .execute()
            )
            if changed != 1:
                current = Referral.get_by_id(self.id)
                self.__data__.update(current.__data__)
                raise Conflict(
                    _l(
                        "Someone else moved this referral first: it is now %(state)s.",
                        state=STATES[current.state],
                    )
                )
            ReferralEvent.create(
                referral=self, user=user, organisation=user.organisation_id, action=action,
                from_state=self.state, to_state=to, note=note, at=now,
            )  # fmt: skip
        for name, value in values.items():
            setattr(self, name, value)

    def submit(self, user: User) -> None:
        self._check(user, "submit")
        if not (self.reason or "").strip():
            raise Refused(_l("Give the reason for referral."))
        if self.needs_consent and not self.consent_is_valid():
            raise Refused(_l("The patient's cross-border consent is missing or withdrawn."))
        self._move(user, "submit", SUBMITTED, submitted_at=utcnow())

    def accept(self, user: User, appointment_at, place, instructions="", transport=False) -> None:
        if self.direction == DOWN:
            raise Refused(_l("A down-referral is accepted into the clinic's register."))
        self._check(user, "accept")
        self._move(
            user, "accept", ACCEPTED, note=place,
            appointment_at=appointment_at, appointment_place=place,
            appointment_instructions=instructions or None, transport_arranged=transport,
            decided_by=user, due_from=max(appointment_at or utcnow(), utcnow()),
        )  # fmt: skip

    def decline(self, user: User, reason: str) -> None:
        self._check(user, "decline")
        if not (reason or "").strip():
            raise Refused(_l("Give the reason for declining."))
        self._move(user, "decline", DECLINED, note=reason, decline_reason=reason, decided_by=user)

    def request_info(self, user: User, question: str) -> None:
        self._check(user, "request_info")
        if not (question or "").strip():
            raise Refused(_l("Write the question."))
        self._move(user, "request_info", INFO_REQUESTED, note=question, question=question)

    def answer_info(self, user: User, answer: str) -> None:
        self._check(user, "answer")
        if not (answer or "").strip():
            raise Refused(_l("Write the answer."))
        self._move(user, "answer", SUBMITTED, note=answer, answer=answer)

    def cancel(self, user: User, reason: str) -> None:
        self._check(user, "cancel")
        if not (reason or "").strip():
            raise Refused(_l("Give the reason for cancelling."))
        self._move(user, "cancel", CANCELLED, note=reason, cancel_reason=reason)

    def record_no_show(self, user: User) -> None:
        self._check(user, "no_show")
        self._move(user, "no_show", NO_SHOW)

    def write_back_referral(self, user: User, **summary) -> None:
        """Specialist's back-referral summary; the specialist signs it by name."""
        self._check(user, "back_referral")
        if not (summary.get("br_diagnosis") or "").strip():
            raise Refused(_l("The back-referral needs a diagnosis."))
        fields = {k: v for k, v in summary.items() if k.startswith("br_")}
        self._move(
            user, "back_referral", COMPLETED, note=summary.get("br_diagnosis"),
            br_signed_by=user, br_signed_at=utcnow(), **fields,
        )  # fmt: skip

    def acknowledge(self, user: User) -> None:
        self._check(user, "acknowledge")
        self._move(user, "acknowledge", CLOSED)

    def accept_down(self, user: User) -> Patient:
        """The clinic takes the patient into its register (matched by identity document)."""
        self._check(user, "accept_down")
        try:
            return self._take_into_register(user)
        except IntegrityError:
            # A desk registered the same person there a moment ago: match that record now.
            return self._take_into_register(user)

    def _take_into_register(self, user: User) -> Patient:
        with write_transaction():
            registered = register_copy_at(self.patient, self.to_org_id, user)
            self._move(user, "accept", ACCEPTED, clinic_patient=registered, decided_by=user)
        return registered

    # ---- consent ----------------------------------------------------------------------------
    @property
    def needs_consent(self) -> bool:
        return bool(self.service_id and self.service.cross_border)

    def consent_is_valid(self) -> bool:
        return bool(
            self.consent_id
            and Consent.select()
            .where(Consent.id == self.consent_id, Consent.withdrawn_at.is_null())
            .exists()
        )

    @staticmethod
    def active_consent(patient: Patient) -> Consent | None:
        return (
            Consent.select()
            .where(
                Consent.patient == patient,
                Consent.scope == "cross_border",
                Consent.withdrawn_at.is_null(),
            )
            .order_by(Consent.recorded_at.desc())
            .first()
        )


def register_copy_at(patient: Patient, clinic_id, user: User) -> Patient:
    """This patient in `clinic_id`'s register: the same person found by identity document, or
    a new record with the demographics and documents copied. Never a duplicate."""
    if patient.clinic_id == clinic_id:
        return patient
    documents = list(IdentityDocument.select().where(IdentityDocument.patient == patient))
    for document in documents:
        match = IdentityDocument.get_or_none(
            IdentityDocument.clinic == clinic_id,
            IdentityDocument.kind == document.kind,
            IdentityDocument.identity_key == document.identity_key,
        )
        if match:
            return match.patient
    fields = {name: getattr(patient, name) for name in Patient.EDITABLE}
    copied_documents = [
        {"kind": d.kind, "number": d.number, "identity_key": d.identity_key, "country": d.country}
        for d in documents
    ]
    return Patient.register(clinic_id, user, fields, copied_documents)


class ReferralEvent(BaseModel):
    """Append-only timeline: who moved the referral, when, from which state to which, and why."""

    referral = ForeignKeyField(Referral, backref="events", index=True)
    at = DateTimeField(default=utcnow)
    user = ForeignKeyField(User, null=True)
    organisation = ForeignKeyField(Organisation, null=True)
    action = CharField()
    from_state = CharField(null=True)
    to_state = CharField()
    note = TextField(null=True)

    @property
    def to_label(self) -> str:
        return str(STATES[self.to_state])

    @property
    def from_label(self) -> str:
        return str(STATES[self.from_state]) if self.from_state else ""


REFERRAL_MODELS = [HubService, Referral, ReferralEvent]
