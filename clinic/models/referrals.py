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
    AuditEvent,
    BaseModel,
    NamedInThreeScripts,
    Organisation,
    TimelineEvent,
    User,
)
from clinic.models.patients import Consent, IdentityDocument, Patient
from clinic.workflow import (
    Conflict,
    Move,
    Refused,
    Stateful,
    TransitionError,
    Workflow,
)

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

BY_CLINIC, BY_HUB = "from_org", "to_org"  # for up-referrals; a down-referral comes from the hub


def _moves(*moves: Move) -> tuple[Move, ...]:
    return moves


UP_FLOW = Workflow(
    STATES,
    _moves(
        Move("submit", (DRAFT,), SUBMITTED, BY_CLINIC, (DOCTOR,),
             _l("Submit"), _l("Referral submitted.")),
        Move("accept", (SUBMITTED,), ACCEPTED, BY_HUB, (COORDINATOR,),
             _l("Accept"), _l("Referral accepted."), form=True),
        Move("decline", (SUBMITTED,), DECLINED, BY_HUB, (COORDINATOR,),
             _l("Decline"), _l("Referral declined."), form=True, danger=True),
        Move("request_info", (SUBMITTED, ACCEPTED), INFO_REQUESTED, BY_HUB,
             (COORDINATOR, SPECIALIST), _l("Ask for information"), _l("Question sent."),
             form=True),
        Move("answer", (INFO_REQUESTED,), SUBMITTED, BY_CLINIC, (DOCTOR,),
             _l("Answer"), _l("Answer sent."), form=True),
        Move("cancel", (DRAFT, SUBMITTED, INFO_REQUESTED), CANCELLED, BY_CLINIC, (DOCTOR,),
             _l("Cancel referral"), _l("Referral cancelled."), form=True, danger=True),
        Move("no_show", (ACCEPTED,), NO_SHOW, BY_HUB, (COORDINATOR, SPECIALIST),
             _l("Record no-show"), _l("No-show recorded.")),
        Move("back_referral", (ACCEPTED,), COMPLETED, BY_HUB, (SPECIALIST,),
             _l("Write back-referral"), _l("Back-referral sent."), form=True),
        Move("acknowledge", (COMPLETED,), CLOSED, BY_CLINIC, (DOCTOR,),
             _l("Acknowledge"), _l("Back-referral acknowledged.")),
    ),
    owners={DRAFT: BY_CLINIC, SUBMITTED: BY_HUB, INFO_REQUESTED: BY_CLINIC, ACCEPTED: BY_HUB,
            COMPLETED: BY_CLINIC},
)  # fmt: skip

# A down-referral: the hub ("from") sends, the clinic ("to") accepts into its register.
DOWN_FLOW = Workflow(
    STATES,
    _moves(
        Move("submit", (DRAFT,), SUBMITTED, "from_org", (SPECIALIST,),
             _l("Submit"), _l("Referral submitted.")),
        Move("accept_down", (SUBMITTED,), ACCEPTED, "to_org", (DOCTOR,),
             _l("Accept into our register"), _l("Patient accepted.")),
        Move("decline", (SUBMITTED,), DECLINED, "to_org", (DOCTOR,),
             _l("Decline"), _l("Referral declined."), form=True, danger=True),
        Move("cancel", (DRAFT, SUBMITTED), CANCELLED, "from_org", (SPECIALIST,),
             _l("Cancel referral"), _l("Referral cancelled."), form=True, danger=True),
    ),
    owners={DRAFT: "from_org", SUBMITTED: "to_org"},
)  # fmt: skip
FLOWS = {UP: UP_FLOW, DOWN: DOWN_FLOW}

MOBILITY = {
    "walking": _l("Walks unaided"),
    "assisted": _l("Walks with help"),
    "wheelchair": _l("Wheelchair"),
    "stretcher": _l("Stretcher"),
}


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


class Referral(Stateful, BaseModel):
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
    info_answer = TextField(null=True, column_name="answer")
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

    class Meta:
        # The worklists: a hub's inbox and a clinic's outbox by state (their fingerprint reads
        # updated_at from the index), and what waits on an owner (the badge, "needs our action").
        indexes = (
            (("to_org", "state", "updated_at"), False),
            (("from_org", "state", "updated_at"), False),
            (("owner", "state", "due_by"), False),
        )

    audit_type = "referral"

    @property
    def workflow(self) -> Workflow:
        return FLOWS[self.direction]

    # ---- labels -----------------------------------------------------------------------------
    @property
    def priority_label(self) -> str:
        return str(PRIORITIES[self.priority])

    @property
    def direction_label(self) -> str:
        return str(DIRECTIONS[self.direction])

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
    def for_rows(cls, query):
        """The query with what a row of a list shows (patient, service, both organisations), in
        one statement: a list does not fetch the six other records a referral's page shows."""
        sender, receiver = Organisation.alias(), Organisation.alias()
        return (
            query.select_extend(Patient, HubService, sender, receiver)
            .join(Patient, on=cls.patient).switch(cls)
            .join(HubService, JOIN.LEFT_OUTER, on=cls.service).switch(cls)
            .join(sender, on=cls.from_org).switch(cls)
            .join(receiver, on=cls.to_org).switch(cls)
        )  # fmt: skip

    @classmethod
    def joined(cls, query):
        """The query with everything a referral's row and page show, in one statement."""
        author, decider, signer = User.alias(), User.alias(), User.alias()
        clinic_record = Patient.alias()
        outer = JOIN.LEFT_OUTER
        return (
            cls.for_rows(query)
            .select_extend(author, decider, signer, Consent, clinic_record)
            .join(author, on=cls.created_by).switch(cls)
            .join(decider, outer, on=cls.decided_by).switch(cls)
            .join(signer, outer, on=cls.br_signed_by).switch(cls)
            .join(Consent, outer, on=cls.consent).switch(cls)
            .join(clinic_record, outer, on=cls.clinic_patient).switch(cls)
        )  # fmt: skip

    @classmethod
    def worklist_order(cls, query):
        """Overdue first, then green channel, urgent, routine, then the oldest."""
        now = utcnow()
        overdue = Case(None, [((cls.owner.is_null(False) & (cls.due_by < now)), 0)], 1)
        priority = Case(cls.priority, list(PRIORITY_RANK.items()), 3)
        return query.order_by(overdue, priority, fn.COALESCE(cls.submitted_at, cls.created_at))

    @classmethod
    def listing(cls, user: User, state="", priority="", service="", org="", needs=False):
        query = cls.for_rows(cls.visible_to(user))
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
        return cls._version(*(row or (0, None)))

    @classmethod
    def page_with_fingerprint(cls, query, page: int, size: int) -> tuple[list, str]:
        """Page `page` of the query (one row more than `size`: is there a next page?) and the
        query's fingerprint, in one statement (window functions count every matching row)."""
        rows = list(
            query.select_extend(
                fn.COUNT(cls.id).over().alias("matching"),
                fn.MAX(cls.updated_at).over().alias("latest_change"),
            )
            .limit(size + 1)
            .offset((page - 1) * size)
        )
        if not rows:
            return rows, cls.fingerprint(query)
        return rows, cls._version(rows[0].matching, rows[0].latest_change)

    @staticmethod
    def _version(count: int, latest) -> str:
        if isinstance(latest, str):  # SQLite hands an aggregate of a datetime back as text
            latest = dt.datetime.fromisoformat(latest)
        return f"{count}-{latest.timestamp() if latest else 0}"

    @classmethod
    def patient_ids_visible_to(cls, user: User):
        """Patients a hub user sees through referrals: coordinators and specialists only
        (need to know: pharmacists and administrators do not work on referrals)."""
        if not user.has_role(COORDINATOR, SPECIALIST):
            return None
        return cls.patient_ids_visible_to_hub(user.organisation_id)

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
        self.check(user, "submit")
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

    # ---- the moves (UP_FLOW, DOWN_FLOW): one method each, named as the move ---------------
    def due_for(self, state: str, now: dt.datetime) -> dt.datetime:
        return now + self.target(self.priority)

    def submit(self, user: User) -> None:
        self.check(user, "submit")
        if self.needs_consent and not self.consent_is_valid():
            raise Refused(_l("The patient's cross-border consent is missing or withdrawn."))
        self.transition(user, "submit", submitted_at=utcnow())

    def accept(
        self,
        user: User,
        appointment_at,
        appointment_place,
        appointment_instructions="",
        transport_arranged=False,
    ) -> None:
        self.check(user, "accept")
        # The hub owns an accepted referral until the appointment (then: no-show or back-referral).
        due = max(appointment_at or utcnow(), utcnow()) + self.target(self.priority)
        self.transition(
            user, "accept", note=appointment_place, due_by=due,
            appointment_at=appointment_at, appointment_place=appointment_place,
            appointment_instructions=appointment_instructions or None,
            transport_arranged=transport_arranged, decided_by=user,
        )  # fmt: skip

    def decline(self, user: User, reason: str) -> None:
        self.check(user, "decline")
        self.transition(
            user, "decline", note=_required(reason, _l("Give the reason for declining.")),
            decline_reason=reason, decided_by=user,
        )  # fmt: skip

    def request_info(self, user: User, question: str) -> None:
        self.check(user, "request_info")
        note = _required(question, _l("Write the question."))
        self.transition(user, "request_info", note=note, question=question)

    def answer(self, user: User, answer: str) -> None:
        self.check(user, "answer")
        self.transition(
            user, "answer", note=_required(answer, _l("Write the answer.")), info_answer=answer
        )

    def cancel(self, user: User, reason: str) -> None:
        self.check(user, "cancel")
        note = _required(reason, _l("Give the reason for cancelling."))
        self.transition(user, "cancel", note=note, cancel_reason=reason)

    def no_show(self, user: User) -> None:
        self.transition(user, "no_show")

    def back_referral(self, user: User, **summary) -> None:
        """Specialist's back-referral summary; the specialist signs it by name."""
        self.check(user, "back_referral")
        diagnosis = _required(
            summary.get("br_diagnosis"), _l("The back-referral needs a diagnosis.")
        )
        fields = {k: v for k, v in summary.items() if k.startswith("br_")}
        self.transition(
            user, "back_referral", note=diagnosis, br_signed_by=user, br_signed_at=utcnow(),
            **fields,
        )  # fmt: skip

    def acknowledge(self, user: User) -> None:
        self.transition(user, "acknowledge")

    def accept_down(self, user: User) -> Patient:
        """The clinic takes the patient into its register (matched by identity document)."""
        self.check(user, "accept_down")
        try:
            return self._take_into_register(user)
        except IntegrityError:
            # A desk registered the same person there a moment ago: match that record now.
            return self._take_into_register(user)

    def _take_into_register(self, user: User) -> Patient:
        with write_transaction():
            registered = register_copy_at(self.patient, self.to_org_id, user)
            self.transition(user, "accept_down", clinic_patient=registered, decided_by=user)
            AuditEvent.write(
                user, "register_from_down_referral", "patient", registered.id,
                f"referral {self.id}",
            )  # fmt: skip
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


def _required(text: str | None, message) -> str:
    if not (text or "").strip():
        raise Refused(message)
    return text


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


class ReferralEvent(TimelineEvent):
    """Append-only timeline of a referral."""

    referral = ForeignKeyField(Referral, backref="events", index=True)

    record_field = "referral"
    states = STATES


Referral.timeline_model = ReferralEvent


REFERRAL_MODELS = [HubService, Referral, ReferralEvent]
