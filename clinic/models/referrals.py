"""Two-way referral: hub services, referrals, their state machine and append-only timeline.

Every move is one method: it checks who may make it, then does a compare-and-set on the state
the user saw (`UPDATE … WHERE id = ? AND state = ?`) inside a write transaction and writes
exactly one timeline event. A second, concurrent move of the same referral updates no row and
loses cleanly with the current state.

No black holes: every open referral has an owner (the organisation whose move it is) and a
due-by time from the priority's response target.
"""

import datetime as dt
import functools
import operator
import re
from dataclasses import dataclass

from flask import current_app, has_app_context
from peewee import (
    JOIN,
    SQL,
    BooleanField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    IntegrityError,
    TextField,
    fn,
)

from clinic.db import AHEAD, AtRun, alias, compiled_rows, row_exists, utcnow, write_transaction
from clinic.models.core import (
    COORDINATOR,
    DOCTOR,
    NURSE,
    SPECIALIST,
    AuditEvent,
    BaseModel,
    NamedInThreeScripts,
    Organisation,
    TimelineEvent,
    User,
)
from clinic.models.patients import SHARE_WITH_CLINIC, Consent, IdentityDocument, Patient
from clinic.models.worklist import Segment, Worklist
from clinic.translation import lazy_gettext as _l
from clinic.workflow import (
    Conflict,
    Move,
    Refused,
    Stateful,
    TransitionError,
    Workflow,
    open_or_closed_within,
    window_start,
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
CLOSED_RANK = 3  # the list rank of a referral that is closed and waits on no one
# A down-referral comes only from an up-referral the hub took on (accepted or completed).
DOWN_SOURCES = (ACCEPTED, COMPLETED, CLOSED)

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
        # Made when the clinic records the withdrawal of the consent the referral relies on.
        Move("stop_for_consent", (SUBMITTED, INFO_REQUESTED, ACCEPTED), CANCELLED, BY_CLINIC,
             (DOCTOR, NURSE), _l("Stop: consent withdrawn"),
             _l("Referral stopped: the patient withdrew their consent."), danger=True),
    ),
    # A decline waits on the referring clinic until its doctor has seen it (it is not open).
    owners={DRAFT: BY_CLINIC, SUBMITTED: BY_HUB, INFO_REQUESTED: BY_CLINIC, ACCEPTED: BY_HUB,
            COMPLETED: BY_CLINIC, DECLINED: BY_CLINIC},
    open_states=(DRAFT, SUBMITTED, INFO_REQUESTED, ACCEPTED, COMPLETED),
)  # fmt: skip
# What "refer elsewhere" copies from a declined referral into a new draft.
COPIED_FIELDS = (
    "priority", "reason", "clinical_summary", "working_diagnosis", "icd10", "results",
    "medications", "allergies", "direct_billing", "insurer", "transport_needed", "mobility",
    "escort", "pickup_notes",
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
        # Made when the patient's own clinic records the withdrawal of the consent it relies on.
        Move("stop_for_consent", (SUBMITTED,), CANCELLED, "patient_clinic", (DOCTOR, NURSE),
             _l("Stop: consent withdrawn"),
             _l("Referral stopped: the patient withdrew their consent."), danger=True),
    ),
    owners={DRAFT: "from_org", SUBMITTED: "to_org"},
)  # fmt: skip
FLOWS = {UP: UP_FLOW, DOWN: DOWN_FLOW}
# The states a referral of the open part of a list can be in (open, or final and waiting on
# someone: a decline until the referring doctor has seen it).
OPEN_PART_STATES = {s for s in STATES if s not in FINAL_STATES}
OPEN_PART_STATES |= {state for flow in FLOWS.values() for state in flow.owners}


def list_order(state: str, priority: str, owner, received_at: dt.datetime) -> dict:
    """The columns the worklist indexes hold: the priority's rank while the referral is open
    or waits on someone (else CLOSED_RANK: the open part of a list comes first), and when the
    receiver got it (sent, or written while a draft)."""
    waits = owner is not None or state not in FINAL_STATES
    return {
        "list_rank": PRIORITY_RANK[priority] if waits else CLOSED_RANK,
        "received_at": received_at,
    }


# A back-referral's medication changes: one a line, each started, stopped or changed.
START, STOP, CHANGE = "start", "stop", "change"
MEDICATION_ACTIONS = {START: _l("Start"), STOP: _l("Stop"), CHANGE: _l("Change")}
ACTION_WORDS = (  # how a line begins, in the words a specialist writes
    (START, re.compile(r"(start|add|begin|new|commence)\b|開始|开始|加|新增|加用", re.I)),
    (STOP, re.compile(r"(stop|discontinue|cease|hold|withdraw)\b|停", re.I)),
)
BULLET = re.compile(r"^\s*(?:[-•*·]|\d+[.)、])\s*")


@dataclass(frozen=True)
class MedicationChange:
    """One line of a back-referral's medication changes: the action and the line as written."""

    number: int  # 1, 2, … in the order written
    action: str
    text: str

    @property
    def action_label(self) -> str:
        return str(MEDICATION_ACTIONS[self.action])


def medication_changes(text: str | None) -> list[MedicationChange]:
    """The changes written one a line (or separated by ";"), bullets dropped; a line that does
    not start with a start or stop word is a change (dose, timing, switch)."""
    lines = [BULLET.sub("", part).strip() for part in re.split(r"[\n;；]", text or "")]
    changes = []
    for line in filter(None, lines):
        action = next((a for a, words in ACTION_WORDS if words.match(line)), CHANGE)
        changes.append(MedicationChange(len(changes) + 1, action, line))
    return changes


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
    br_follow_up_due = DateField(null=True, index=True)  # Today's follow-ups
    br_signed_by = ForeignKeyField(User, null=True)
    br_signed_at = DateTimeField(null=True)
    br_applied_at = DateTimeField(null=True)  # medication changes applied to the record
    # Down-referral: the record in the receiving clinic's register, once accepted
    clinic_patient = ForeignKeyField(Patient, null=True)
    # Workflow
    state = CharField(choices=list(STATES.items()), default=DRAFT, index=True)
    # Indexed by the owner's worklist index (Meta): an index of the owner alone would compete
    # with its walk (PostgreSQL reads and sorts a few rows it underestimates instead).
    owner = ForeignKeyField(Organisation, null=True, index=False)
    due_by = DateTimeField(null=True)
    created_by = ForeignKeyField(User, backref="referrals_created")
    created_at = DateTimeField(default=utcnow)
    submitted_at = DateTimeField(null=True)
    updated_at = DateTimeField(default=utcnow)
    # The worklist order, kept by every write (`list_order`): the lists read it from the indexes.
    list_rank = IntegerField(default=CLOSED_RANK)
    received_at = DateTimeField(null=True)  # COALESCE(submitted_at, created_at)

    class Meta:
        # The worklists, one index a side: what an organisation received (the hub's inbox),
        # sent (a clinic's outbox) and owns (the badge, "needs our action", Today), each in the
        # list's order so a page reads its rows from the index and stops.
        indexes = (
            (("to_org", "list_rank", "received_at", "id"), False),
            (("from_org", "list_rank", "received_at", "id"), False),
            (("owner", "list_rank", "received_at", "id"), False),
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

    @property
    def patient_clinic_id(self) -> int:
        """The patient's own clinic (it records a withdrawal of their consent)."""
        return self.patient.clinic_id

    def side_of(self, organisation_id) -> str | None:
        if organisation_id == self.from_org_id:
            return "from"
        if organisation_id == self.to_org_id:
            return "to"
        return None

    # ---- queries ----------------------------------------------------------------------------
    @classmethod
    def visible_to(cls, user: User):
        """Referrals this user's organisation sent, or received once submitted, under need to
        know (`visible_to_organisation`)."""
        return cls.visible_to_organisation(user.organisation_id)

    @classmethod
    def visible_to_organisation(cls, organisation_id: int):
        return cls.select().where(cls.visible_condition(organisation_id))

    @classmethod
    def visible_condition(cls, organisation_id: int):
        """SQL: the patient's own clinic sees its referrals always; any other party (the hub,
        a clinic receiving a down-referral) while the referral is in the access window and the
        consent it relies on still holds."""
        return cls._need_to_know(organisation_id, cls.consent_holds())

    @classmethod
    def _need_to_know(cls, organisation_id: int, consent):
        """SQL: sent, or received once submitted, and the patient's own clinic, or within the
        access window with `consent` holding."""
        party = (cls.from_org == organisation_id) | (
            (cls.to_org == organisation_id) & (cls.state != DRAFT)
        )
        others = cls.access_window() & consent
        return party & Patient.need_to_know(
            organisation_id, others, cls.patient, cls.clinic_patient
        )

    @classmethod
    def open_condition(cls, model=None):
        """SQL: open in its own workflow (an up- and a down-referral close differently)."""
        model = model or cls
        return ((model.direction == UP) & model.state.in_(UP_FLOW.open_states)) | (
            (model.direction == DOWN) & model.state.in_(DOWN_FLOW.open_states)
        )

    @classmethod
    def access_window(cls):
        """Open or closed less than the window ago; a down-referral the hub cancelled grants
        no more time than the referral it came from, or (written without one) than its own
        writing: cancelling cannot extend access."""
        source = alias(Referral, "referral.source")
        cancelled_down = (cls.direction == DOWN) & (cls.state == CANCELLED)
        source_in_window = row_exists(  # asked of each row: the list would be every referral
            source.select(SQL("1")).where(
                source.id == cls.parent,
                open_or_closed_within(cls.open_condition(source), source.updated_at),
            )
        )
        window = open_or_closed_within(cls.open_condition(), cls.updated_at)
        cancelled_window = source_in_window | (
            cls.parent.is_null() & (cls.created_at >= AtRun(window_start))
        )
        return (~cancelled_down & window) | (cancelled_down & cancelled_window)

    @classmethod
    def consent_holds(cls):
        """SQL: the consent the referral relies on (a cross-border service's, or the one naming
        the clinic of a down-referral) is not withdrawn; or it relies on none."""
        cross_border = HubService.select(SQL("1")).where(
            HubService.id == cls.service, HubService.cross_border
        )
        valid = Consent.select(SQL("1")).where(
            Consent.id == cls.consent, Consent.withdrawn_at.is_null()
        )
        needs_none = cls.service.is_null() | ~row_exists(cross_border)
        return row_exists(valid) | (cls.consent.is_null() & needs_none)

    @classmethod
    def stopped_for_consent(cls):
        """SQL: cancelled when (or after) the consent it relied on was withdrawn: the
        `stop_for_consent` move, made in the withdrawal's transaction."""
        withdrawn = Consent.select(SQL("1")).where(
            Consent.id == cls.consent, Consent.withdrawn_at <= cls.updated_at
        )
        return (cls.state == CANCELLED) & row_exists(withdrawn)

    @classmethod
    def readable_by(cls, user: User):
        return cls.select().where(cls.readable_condition(user))

    @classmethod
    def readable_condition(cls, user: User):
        """SQL: `visible_to`, and the referrals stopped for consent that the user's
        organisation was a party to, within the access window: those it reads only as stopped,
        with the reason and nothing about the patient (`redacted_for`)."""
        # = visible_condition | (party & stopped_for_consent & access_window), the window
        # written once: a stopped referral is cancelled (never a draft), so its party is the
        # visible one, and the patient's own clinic sees it anyway.
        consent = cls.consent_holds() | cls.stopped_for_consent()
        return cls._need_to_know(user.organisation_id, consent)

    def redacted_for(self, user: User) -> bool:
        """Shown to this reader without the patient: it was stopped because the patient
        withdrew their consent, and the reader is not the patient's own clinic (loaded with
        `joined`)."""
        return bool(self.stopped_for_consent_at and self.patient.clinic_id != user.organisation_id)

    @property
    def stopped_for_consent_at(self) -> dt.datetime | None:
        """When the patient withdrew the consent this referral was stopped for (None: it was
        not), as `stopped_for_consent` says in SQL."""
        withdrawn_at = self.consent.withdrawn_at if self.consent_id else None
        stopped = self.state == CANCELLED and withdrawn_at and withdrawn_at <= self.updated_at
        return withdrawn_at if stopped else None

    @classmethod
    def for_rows(cls, query):
        """The query with what a row of a list shows (patient, service, both organisations), in
        one statement: a list does not fetch the six other records a referral's page shows."""
        sender = alias(Organisation, "referral.sender")
        receiver = alias(Organisation, "referral.receiver")
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
        author, decider = alias(User, "referral.author"), alias(User, "referral.decider")
        signer = alias(User, "referral.signer")
        clinic_record = alias(Patient, "referral.clinic_record")
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
    def worklist_order(cls, query, now: dt.datetime):
        """Overdue first; then the open part of the list by priority (green channel, urgent,
        routine), the oldest first; then the closed referrals, the newest first."""
        overdue = Case(None, [((cls.owner.is_null(False) & (cls.due_by < now)), 0)], 1)
        open_part = cls.list_rank < CLOSED_RANK
        return query.order_by(
            overdue, cls.list_rank, Case(None, [(open_part, cls.received_at)]),
            Case(None, [(open_part, cls.id)]), cls.received_at.desc(), cls.id.desc(),
        )  # fmt: skip

    @classmethod
    def worklist(cls, sides: list, wanted, parts=(True, True), narrowed=None) -> Worklist:
        """The referrals matching `wanted` on any of the `sides`, in worklist order. A side is
        (condition, owned): a condition that one worklist index answers (to_org, from_org or
        owner); owned, for the owner's side: an owned referral waits on its owner, so it is in
        the open part (`list_order`) and that side has no closed part to read. `parts`: read
        the (open, closed) part of the list (a state filter may rule one out).
        `narrowed`: a filter on plain columns, tested by the index walk itself (PostgreSQL
        may read the few rows of a narrow filter by another index); `wanted` and being
        overdue are asked of each row the walk yields (`Segment.check`)."""
        now = AtRun(utcnow)
        overdue = cls.owner.is_null(False) & (cls.due_by < now)
        on_time = cls.owner.is_null() | cls.due_by.is_null() | (cls.due_by >= now)
        open_part, closed_part = cls.list_rank < CLOSED_RANK, cls.list_rank == CLOSED_RANK
        by_age, newest = (
            (cls.list_rank, cls.received_at, cls.id),
            (cls.received_at.desc(), cls.id.desc()),
        )
        segments = []
        for side, owned in sides:
            rows, first = side if narrowed is None else side & narrowed, len(segments)
            if parts[0]:
                segments.append(Segment(rows & open_part, by_age, (), overdue & wanted))
                segments.append(Segment(rows & open_part, by_age, (first,), on_time & wanted))
            opened = (first, first + 1) if parts[0] else ()
            if parts[1] and not owned:
                segments.append(Segment(rows & closed_part, newest, opened, wanted))
        return Worklist(
            cls, tuple(segments), lambda query: cls.worklist_order(query, now), cls.joined,
            (cls.id, cls.direction, cls.state, cls.owner, cls.due_by, cls.updated_at),
            lambda row: (row.id, str(row.updated_at), row.is_overdue),
        )  # fmt: skip

    @classmethod
    def listing(
        cls, user: User, state="", priority="", service: int | None = None,
        org: int | None = None, needs=False,
    ) -> Worklist:  # fmt: skip
        """The inbox and outbox (a referral stopped for consent is read redacted), filtered."""
        organisation_id = user.organisation_id
        wanted, narrowed = cls.readable_condition(user), []
        parts = (True, True)
        if state == "open":
            # Asked of each row: it drops only the declines still waiting to be seen from the
            # open part, and PostgreSQL, multiplying the two, would expect almost no row.
            wanted &= cls.state.not_in(FINAL_STATES)
            parts = (True, False)
        elif state in STATES:
            narrowed.append(cls.state == state)
            parts = (state in OPEN_PART_STATES, state in FINAL_STATES)
        if priority:
            narrowed.append(cls.priority == priority)
        if service:
            narrowed.append(cls.service == service)
        if org:
            narrowed.append((cls.from_org == org) | (cls.to_org == org))
        narrowed = functools.reduce(operator.and_, narrowed) if narrowed else None
        if needs:  # the same rows the navigation count counts
            side = (cls.owner == organisation_id) & (cls.state != DRAFT)
            return cls.worklist([(side, True)], wanted, parts, narrowed)
        sides = [(cls.to_org == organisation_id, False), (cls.from_org == organisation_id, False)]
        return cls.worklist(sides, wanted, parts, narrowed)

    @classmethod
    def awaiting(cls, user: User):
        """Open referrals whose move is this user's organisation's (drafts are not counted)."""
        return cls.visible_to(user).where(cls.owner == user.organisation_id, cls.state != DRAFT)

    @classmethod
    def fill_added_columns(cls) -> int:
        """`list_order` in SQL, for the referrals written before its columns existed."""
        waits = cls.owner.is_null(False) | cls.state.not_in(FINAL_STATES)
        priority = Case(cls.priority, list(PRIORITY_RANK.items()), CLOSED_RANK)
        return (
            cls.update(
                list_rank=Case(None, [(waits, priority)], CLOSED_RANK),
                received_at=fn.COALESCE(cls.submitted_at, cls.created_at),
            )
            .where(cls.received_at.is_null())
            .execute()
        )

    @classmethod
    def records_of(cls, patient: Patient) -> dict:
        """This patient's referrals, for their access report."""
        return {"referral": cls.select(cls.id).where(cls.patient == patient)}

    @classmethod
    def patient_ids_visible_to(cls, user: User):
        """Patients a hub user sees through referrals: coordinators and specialists only
        (need to know: pharmacists and administrators do not work on referrals)."""
        if not user.has_role(COORDINATOR, SPECIALIST):
            return None
        return cls.visible_to_organisation(user.organisation_id).select(cls.patient)

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
        priority = fields.get("priority", ROUTINE)
        with write_transaction():
            referral = cls.create(
                patient=patient,
                from_org=user.organisation_id,
                created_by=user,
                state=DRAFT,
                owner=user.organisation_id,
                due_by=now + cls.target(priority),
                created_at=now,
                updated_at=now,
                **list_order(DRAFT, priority, user.organisation_id, now),
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
        received = self.submitted_at or self.created_at
        fields |= list_order(DRAFT, fields.get("priority", self.priority), self.owner_id, received)
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

    def moved_values(self, values: dict) -> dict:
        """A move also writes the worklist order of the referral as it leaves it."""
        received = values.get("submitted_at", self.submitted_at) or self.created_at
        owner = values.get("owner", self.owner_id)
        return values | list_order(values["state"], self.priority, owner, received)

    def submit(self, user: User) -> None:
        self.check(user, "submit")
        if not (self.reason or "").strip():
            raise Refused(_l("Give the reason for referral."))
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
        if appointment_at and appointment_at > utcnow() + AHEAD:
            raise Refused(_l("At most two years ahead."))
        # The hub owns an accepted referral until the appointment (then: no-show or back-referral).
        due = max(appointment_at or utcnow(), utcnow()) + self.target(self.priority)
        self.transition(
            user, "accept", note=appointment_place, due_by=due,
            appointment_at=appointment_at, appointment_place=appointment_place,
            appointment_instructions=appointment_instructions or None,
            transport_arranged=transport_arranged, decided_by=user,
        )  # fmt: skip

    def refusal(self, user: User, move: Move) -> object | None:
        """Also: the hub makes no move on a referral whose consent was withdrawn, and a
        referral is stopped for consent only once its consent is withdrawn."""
        consent_gone = self.relies_on_consent and not self.consent_is_valid()
        hub_move = move.side == BY_HUB if self.direction == UP else move.name != "stop_for_consent"
        if consent_gone and hub_move:
            return _l("The patient's cross-border consent is missing or withdrawn.")
        if move.name == "stop_for_consent" and not consent_gone:
            return _l("The patient's consent is still valid.")
        return super().refusal(user, move)

    def stop_for_consent(self, user: User) -> None:
        reason = str(_l("The patient withdrew their consent to share the record."))
        self.transition(user, "stop_for_consent", note=reason, cancel_reason=reason)

    @classmethod
    def stop_all_for_consent(cls, user: User, consent: Consent) -> list["Referral"]:
        """Every open referral that relied on this (now withdrawn) consent, stopped: an
        up-referral, and a down-referral to a clinic the consent named."""
        sources = {*UP_FLOW.moves["stop_for_consent"].sources}
        sources |= {*DOWN_FLOW.moves["stop_for_consent"].sources}
        relying = cls.select().where(cls.consent == consent.id, cls.state.in_(sorted(sources)))
        stopped = []
        for referral in relying:
            if referral.refusal(user, referral.workflow.moves["stop_for_consent"]) is None:
                referral.stop_for_consent(user)
                stopped.append(referral)
        return stopped

    def decline(self, user: User, reason: str) -> None:
        self.check(user, "decline")
        self.transition(
            user, "decline", note=_required(reason, _l("Give the reason for declining.")),
            decline_reason=reason, decided_by=user,
        )  # fmt: skip

    def _declined_for(self, user: User) -> bool:
        """A decline this clinic doctor has to know about (their organisation sent it)."""
        return (
            self.direction == UP and self.state == DECLINED and user.has_role(DOCTOR)
            and user.organisation_id == self.from_org_id
        )  # fmt: skip

    def note_decline_seen(self, user: User) -> bool:
        """The referring doctor has read the decline: it no longer waits on their clinic."""
        if not (self._declined_for(user) and self.owner_id == user.organisation_id):
            return False
        unowned = list_order(DECLINED, self.priority, None, self.received_at)
        changed = (
            Referral.update(owner=None, due_by=None, **unowned)
            .where(
                Referral.id == self.id, Referral.state == DECLINED, Referral.owner.is_null(False)
            )
            .execute()
        )
        self.owner, self.due_by, self.list_rank = None, None, unowned["list_rank"]
        return bool(changed)

    def can_refer_elsewhere(self, user: User) -> bool:
        return self._declined_for(user)

    def refer_elsewhere(self, user: User) -> "Referral":
        """A new draft copied from this declined referral, for another service or hub."""
        if not self.can_refer_elsewhere(user):
            raise Refused(_l("Only the referring doctor can refer a declined referral elsewhere."))
        fields = {name: getattr(self, name) for name in COPIED_FIELDS}
        return Referral.create_draft(
            user, self.patient, direction=UP, to_org=self.to_org_id, service=self.service_id,
            **fields,
        )  # fmt: skip

    def patient_record_for(self, user: User) -> Patient | None:
        """The patient record this reader may open from the referral (never a dead link): the
        hub sees the patient the referral is about; a clinic sees the record in its register."""
        if user.organisation.is_hub:
            return self.patient
        for record in (self.clinic_patient if self.clinic_patient_id else None, self.patient):
            if record is not None and record.clinic_id == user.organisation_id:
                return record
        return None

    @property
    def owner_person(self) -> User | None:
        """Who has it now, once someone does: the referring doctor when it waits on the clinic,
        the coordinator who accepted it while the hub works on it."""
        if self.owner_id is None:
            return None
        if self.owner_id == self.from_org_id:
            return self.created_by
        return self.decided_by if self.state == ACCEPTED and self.decided_by_id else None

    # ---- the back-referral flows into the clinic's record --------------------------------
    def can_apply_medication_changes(self, user: User) -> bool:
        return bool(
            self.direction == UP and self.state in (COMPLETED, CLOSED)
            and self.br_medication_changes and self.br_applied_at is None
            and user.has_role(DOCTOR) and user.organisation_id == self.from_org_id
        )  # fmt: skip

    @property
    def medication_changes(self) -> list[MedicationChange]:
        return medication_changes(self.br_medication_changes)

    def apply_medication_changes(
        self, user: User, source: str, chosen: list[int] | None = None
    ) -> list[MedicationChange]:
        """Add the chosen medication changes (their numbers; None: all) to the patient's
        medication list, each as its own line, once (compare-and-set on br_applied_at);
        `source` says where the lines came from. Returns the changes applied."""
        changes = [c for c in self.medication_changes if chosen is None or c.number in chosen]
        if not (changes and self.can_apply_medication_changes(user)):
            return []
        with write_transaction():
            applied = (
                Referral.update(br_applied_at=utcnow())
                .where(Referral.id == self.id, Referral.br_applied_at.is_null())
                .execute()
            )
            if not applied:
                return []
            patient = Patient.get_by_id(self.patient_id)
            lines = [(patient.medications or "").rstrip()]
            lines += [f"{change.text} ({source})" for change in changes]
            Patient.update(medications="\n".join(filter(None, lines)), updated_at=utcnow()).where(
                Patient.id == patient.id
            ).execute()
        self.br_applied_at = utcnow()
        return changes

    @classmethod
    def follow_up_due(cls, user: User, day: dt.date):
        """SQL: a back-referral whose follow-up falls on this day, at the clinic that referred."""
        return (
            (cls.from_org == user.organisation_id) & (cls.direction == UP)
            & (cls.br_follow_up_due == day) & cls.state.in_([COMPLETED, CLOSED])
        )  # fmt: skip

    @classmethod
    def worklist_for_today(cls, user: User, day: dt.date, size: int = 10) -> tuple[list, list]:
        """(referrals waiting on the user's organisation, overdue first; follow-ups due on
        `day`, for a clinic doctor), both from one statement."""
        doctor = user.has_role(DOCTOR)

        def rows():
            waiting = (cls.owner == user.organisation_id) & (cls.state != DRAFT)
            sides = [(waiting, True)]
            if doctor:
                sides.append((cls.follow_up_due(user, day), False))
            return cls.worklist(sides, cls.visible_condition(user.organisation_id)).rows(60)

        # Built from the organisation, whether a doctor reads it and the day alone.
        rows = compiled_rows(("today referrals", user.organisation_id, doctor, day), rows)
        is_waiting = [r.owner_id == user.organisation_id and r.state != DRAFT for r in rows]
        due = [
            r for r, w in zip(rows, is_waiting, strict=True) if not w or r.br_follow_up_due == day
        ]
        return [r for r, w in zip(rows, is_waiting, strict=True) if w][:size], due

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

    # ---- down-referral ----------------------------------------------------------------------
    def may_refer_down(self, user: User) -> bool:
        """A hub specialist refers down from an up-referral the hub accepted or completed, and
        only while the hub may still see it (the access window: loaded with `visible_to`)."""
        return (
            self.direction == UP
            and self.to_org_id == user.organisation_id
            and self.state in DOWN_SOURCES
            and user.has_role(SPECIALIST)
        )

    def refer_down(
        self, user: User, clinic: Organisation, consent_given: bool = False, **fields
    ) -> "Referral":
        """A down-referral, sent: to the clinic that referred the patient; to another clinic
        only with the patient's consent naming it (recorded now when given now)."""
        if not self.may_refer_down(user):
            raise Refused(_l("A down-referral needs a referral the hub accepted or completed."))
        with write_transaction():
            consent = self.consent
            if clinic.id != self.from_org_id:
                consent = Consent.naming(self.patient_id, clinic.id)
                if consent is None and not consent_given:
                    raise Refused(_l("Another clinic needs the patient's consent naming it."))
                if consent is None:
                    consent = Consent.create(
                        patient=self.patient_id, scope=SHARE_WITH_CLINIC, organisation=clinic,
                        recorded_by=user, note=str(_l("Recorded with a down-referral")),
                    )  # fmt: skip
                    detail = f"consent {consent.id} {SHARE_WITH_CLINIC} {clinic.id}"
                    AuditEvent.write(user, "consent_recorded", "patient", self.patient_id, detail)
            referral = Referral.create_draft(
                user, self.patient, direction=DOWN, parent=self, to_org=clinic, consent=consent,
                **fields,
            )  # fmt: skip
            referral.submit(user)
            AuditEvent.write(user, "create", "referral", referral.id, "down-referral")
        return referral

    # ---- consent ----------------------------------------------------------------------------
    @property
    def needs_consent(self) -> bool:
        return bool(self.service_id and self.service.cross_border)

    @property
    def relies_on_consent(self) -> bool:
        """A cross-border service's referral, or a down-referral sent with a consent (the one
        naming the clinic, or the up-referral's)."""
        return self.needs_consent or bool(self.direction == DOWN and self.consent_id)

    def consent_is_valid(self) -> bool:
        """The consent is not withdrawn: as read in the referral's own statement when `joined`
        loaded it (as fresh as the state a move compares with), else asked now."""
        loaded = self.__rel__.get("consent")
        if self.consent_id and loaded is not None:
            return loaded.withdrawn_at is None
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
