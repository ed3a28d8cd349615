"""Drug consultations: a clinic asks its hub's pharmacists, a named pharmacist answers.

Every move is one method (named as the move) ending in `Stateful.transition`: a compare-and-set
on the state the user saw, one timeline event and the audit row in one transaction, so of ten
pharmacists claiming one question at once exactly one owns it.

No black holes: an open consultation always has an owner (the hub while it waits on a
pharmacist, the clinic while it waits on the asker) and a due-by time from its urgency.
"""

import datetime as dt
import json
from typing import NamedTuple
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from peewee import (
    JOIN,
    SQL,
    BooleanField,
    Case,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    fn,
)

from clinic.db import alias, utcnow, write_transaction
from clinic.models.core import (
    DOCTOR,
    NURSE,
    PHARMACIST,
    AuditEvent,
    BaseModel,
    ClinicHub,
    Organisation,
    TimelineEvent,
    User,
)
from clinic.models.drugs import Drug
from clinic.models.patients import CROSS_BORDER, Consent, Patient, fold_chinese, prefix_range
from clinic.models.phrases import Phrase
from clinic.models.referrals import Referral
from clinic.translation import lazy_gettext as _l
from clinic.workflow import Conflict, Move, Refused, Stateful, Workflow

__all__ = [
    "CONSULTATION_MODELS", "CONSULTATION_STATES", "QUESTION_TYPES", "URGENCIES",
    "WHERE_REGISTERED", "Consultation", "ConsultationEvent", "GuidanceLine",
]  # fmt: skip

WHERE_REGISTERED = {
    "hk": _l("Hong Kong"),
    "mainland": _l("Mainland"),
    "both": _l("Hong Kong and mainland"),
    "unknown": _l("Not known"),
}
QUESTION_TYPES = {
    "availability": _l("Availability"),
    "equivalent": _l("Equivalent or substitute"),
    "dosing": _l("Dosing"),
    "interaction": _l("Interaction"),
    "border": _l("Carrying across the border"),
    "other": _l("Other"),
}
IMMEDIATE, SAME_DAY, ROUTINE = "immediate", "same_day", "routine"
URGENCIES = {IMMEDIATE: _l("Immediate"), SAME_DAY: _l("Same day"), ROUTINE: _l("Routine")}
URGENCY_RANK = {IMMEDIATE: 0, SAME_DAY: 1, ROUTINE: 2}
PREGNANCY = {
    "no": _l("Neither"),
    "pregnant": _l("Pregnant"),
    "breastfeeding": _l("Breastfeeding"),
    "unknown": _l("Not known"),
}
# Defaults of config CONSULTATION_DUE (see clinic/config.py).
DEFAULT_DUE = {"immediate_hours": 1, "same_day_until": "18:00", "same_day_min_hours": 4,
               "routine_days": 3}  # fmt: skip

OPEN, CLAIMED, INFO_REQUESTED, CHECKING = "open", "claimed", "info_requested", "checking"
ANSWERED, ACKNOWLEDGED, CANCELLED = "answered", "acknowledged", "cancelled"
CONSULTATION_STATES = {
    OPEN: _l("Waiting for a pharmacist"),
    CLAIMED: _l("Claimed"),
    INFO_REQUESTED: _l("Information requested"),
    CHECKING: _l("Awaiting second check"),
    ANSWERED: _l("Answered"),
    ACKNOWLEDGED: _l("Acknowledged"),
    CANCELLED: _l("Cancelled"),
}
HUB, CLINIC = "hub", "clinic"  # the record's organisation fields whose staff move it
ASKERS = (DOCTOR, NURSE)
ANSWERED_STATES = (ANSWERED, ACKNOWLEDGED)

FLOW = Workflow(
    CONSULTATION_STATES,
    (
        Move("claim", (OPEN,), CLAIMED, HUB, (PHARMACIST,), _l("Claim"),
             _l("Claimed: it is yours.")),
        Move("release", (CLAIMED,), OPEN, HUB, (PHARMACIST,), _l("Release"),
             _l("Released: back in the queue."), undo=True),
        Move("request_info", (CLAIMED,), INFO_REQUESTED, HUB, (PHARMACIST,),
             _l("Ask the clinic"), _l("Question sent to the clinic."), form=True),
        Move("give_info", (INFO_REQUESTED,), CLAIMED, CLINIC, ASKERS,
             _l("Answer the pharmacist"), _l("Answer sent to the pharmacist."), form=True),
        Move("answer", (CLAIMED,), ANSWERED, HUB, (PHARMACIST,),
             _l("Write the answer"), _l("Answer signed and sent."), form=True),
        Move("answer_for_check", (CLAIMED,), CHECKING, HUB, (PHARMACIST,),
             _l("Write the answer"), _l("Answer signed: it waits for a second check."),
             form=True),
        Move("second_check", (CHECKING,), ANSWERED, HUB, (PHARMACIST,),
             _l("Checked: send to the clinic"), _l("Checked and sent to the clinic.")),
        Move("send_back", (CHECKING,), CLAIMED, HUB, (PHARMACIST,),
             _l("Send back to the answering pharmacist"), _l("Sent back for changes."),
             form=True, danger=True),
        Move("acknowledge", (ANSWERED,), ACKNOWLEDGED, CLINIC, ASKERS,
             _l("Acknowledge"), _l("Answer acknowledged.")),
        Move("cancel", (OPEN,), CANCELLED, CLINIC, ASKERS, _l("Cancel the question"),
             _l("Question cancelled."), form=True, danger=True),
        # Made when the clinic records the withdrawal of the patient's cross-border consent.
        Move("stop_for_consent", (OPEN, CLAIMED, INFO_REQUESTED, CHECKING), CANCELLED, CLINIC,
             ASKERS, _l("Stop: consent withdrawn"),
             _l("Question stopped: the patient withdrew their consent."), danger=True),
    ),
    owners={OPEN: HUB, CLAIMED: HUB, INFO_REQUESTED: CLINIC, CHECKING: HUB, ANSWERED: CLINIC},
    conflict=_l("Someone else moved this question first: it is now %(state)s."),
)  # fmt: skip
# Moves a view offers as buttons (the answer has a page of its own, consent stops are automatic).
BUTTON_MOVES = ("claim", "release", "request_info", "give_info", "second_check", "send_back",
                "acknowledge", "cancel")  # fmt: skip


class Reference(NamedTuple):
    title: str
    source: str = ""
    link: str = ""


def due_settings() -> dict:
    settings = dict(DEFAULT_DUE)
    if has_app_context():
        settings |= current_app.config.get("CONSULTATION_DUE", {})
    return settings


def answer_due(urgency: str, now: dt.datetime, timezone: str) -> dt.datetime:
    """When the hub must have answered (UTC, naive): immediate 1 h; same day 18:00 in the
    hub's time zone, or 4 h when that is later; routine 3 days (config CONSULTATION_DUE)."""
    settings = due_settings()
    if urgency == IMMEDIATE:
        return now + dt.timedelta(hours=settings["immediate_hours"])
    if urgency == SAME_DAY:
        zone = ZoneInfo(timezone)
        local = now.replace(tzinfo=dt.UTC).astimezone(zone)
        hour, minute = (int(part) for part in settings["same_day_until"].split(":"))
        end = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        end = end.astimezone(dt.UTC).replace(tzinfo=None)
        return max(end, now + dt.timedelta(hours=settings["same_day_min_hours"]))
    return now + dt.timedelta(days=settings["routine_days"])


def second_check_required(hub: Organisation) -> bool:
    """Config CONSULTATION_SECOND_CHECK: True (every hub), False (none) or a list of hub names."""
    setting = True
    if has_app_context():
        setting = current_app.config.get("CONSULTATION_SECOND_CHECK", True)
    if isinstance(setting, bool):
        return setting
    return hub.name in setting


class Consultation(Stateful, BaseModel):
    clinic = ForeignKeyField(Organisation, backref="consultations_asked")
    hub = ForeignKeyField(Organisation, backref="consultations_received")
    patient = ForeignKeyField(Patient, null=True, backref="consultations", index=True)
    asked_by = ForeignKeyField(User, backref="consultations_asked")
    # The question
    drug = ForeignKeyField(Drug, null=True)
    drug_text = CharField(max_length=200)
    drug_key = CharField(max_length=200, index=True)  # folded: library search by prefix
    where_registered = CharField(default="unknown")
    gba_listed = BooleanField(default=False)  # 港澳藥械通, as the asker knew it
    question_type = CharField()
    details = TextField()
    urgency = CharField(default=ROUTINE)
    patient_specific = BooleanField(default=True)
    medications = TextField(null=True)
    allergies = TextField(null=True)
    pregnancy = CharField(default="unknown")
    renal_impairment = BooleanField(default=False)
    hepatic_impairment = BooleanField(default=False)
    # The exchange
    info_question = TextField(null=True)
    info_answer = TextField(null=True)
    cancel_reason = TextField(null=True)
    # The answer, signed by the named pharmacist (and checked by another, when the hub asks)
    answer_note = TextField(null=True)
    answered_by = ForeignKeyField(User, null=True)
    answered_at = DateTimeField(null=True)
    checked_by = ForeignKeyField(User, null=True)
    checked_at = DateTimeField(null=True)
    cited = TextField(null=True)  # the references: JSON [{title, source, link}]
    referral = ForeignKeyField(Referral, null=True, backref="consultations")  # advised
    # Workflow
    state = CharField(default=OPEN, index=True)
    owner = ForeignKeyField(Organisation, null=True)
    claimed_by = ForeignKeyField(User, null=True)
    due_by = DateTimeField(null=True)
    answer_by = DateTimeField()  # the hub's deadline from the urgency, set when asked
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("hub", "state", "due_by"), False),  # the pharmacist queue, overdue first
            (("clinic", "state", "updated_at"), False),
            (("owner", "state"), False),  # the navigation count
            (("hub", "question_type", "answered_at"), False),  # the library, newest first
        )

    workflow = FLOW
    audit_type = "consultation"

    @classmethod
    def open_condition(cls):
        """SQL: open. The states are written into the statement (constants, not parameters),
        so the planner matches the partial index of the queue (`consultation_open_queue`)."""
        return cls.state.in_([SQL(f"'{state}'") for state in FLOW.open_states])

    # ---- labels -----------------------------------------------------------------------------
    @property
    def urgency_label(self) -> str:
        return str(URGENCIES.get(self.urgency, self.urgency))

    @property
    def question_type_label(self) -> str:
        return str(QUESTION_TYPES.get(self.question_type, self.question_type))

    @property
    def where_registered_label(self) -> str:
        return str(WHERE_REGISTERED.get(self.where_registered, self.where_registered))

    @property
    def pregnancy_label(self) -> str:
        return str(PREGNANCY.get(self.pregnancy, self.pregnancy))

    @property
    def owner_person(self) -> User | None:
        """Who has it now: the claiming pharmacist while the hub works on it, the asker when
        it waits on the clinic; None while it waits in the queue for anyone."""
        if self.state in (CLAIMED, CHECKING):
            return self.claimed_by
        if self.state in (INFO_REQUESTED, ANSWERED):
            return self.asked_by
        return None

    # ---- queries ----------------------------------------------------------------------------
    @classmethod
    def visible_to(cls, user: User):
        return cls.visible_to_organisation(user.organisation_id, user.organisation.is_hub)

    @classmethod
    def visible_to_organisation(cls, organisation_id: int, is_hub: bool):
        """The asking clinic sees its consultations always; the hub they are addressed to only
        under need to know: open, or closed less than HUB_ACCESS_DAYS_AFTER_CLOSE days ago.
        (One side per organisation, so the worklist indexes on clinic or hub answer it.)"""
        if not is_hub:
            return cls.select().where(cls.clinic == organisation_id)
        window = Patient.need_to_know(organisation_id, cls.access_window(), cls.patient)
        return cls.select().where(cls.hub == organisation_id, window)

    @classmethod
    def patient_ids_visible_to(cls, user: User):
        """Patients a hub pharmacist sees through consultations addressed to their hub."""
        if not user.has_role(PHARMACIST):
            return None
        return (
            cls.visible_to_organisation(user.organisation_id, is_hub=True)
            .select(cls.patient)
            .where(cls.hub == user.organisation_id, cls.patient.is_null(False))
        )

    @classmethod
    def records_of(cls, patient: Patient) -> dict:
        return {"consultation": cls.select(cls.id).where(cls.patient == patient)}

    @classmethod
    def joined(cls, query):
        """With what a row and the page show (patient, both organisations, the people)."""
        asker, claimer = alias(User, "consultation.asker"), alias(User, "consultation.claimer")
        answerer = alias(User, "consultation.answerer")
        checker = alias(User, "consultation.checker")
        clinic = alias(Organisation, "consultation.clinic")
        hub = alias(Organisation, "consultation.hub")
        outer = JOIN.LEFT_OUTER
        return (
            query.select_extend(Patient, clinic, hub, asker, claimer, answerer, checker)
            .join(Patient, outer, on=cls.patient).switch(cls)
            .join(clinic, on=cls.clinic).switch(cls)
            .join(hub, on=cls.hub).switch(cls)
            .join(asker, on=cls.asked_by).switch(cls)
            .join(claimer, outer, on=cls.claimed_by).switch(cls)
            .join(answerer, outer, on=cls.answered_by).switch(cls)
            .join(checker, outer, on=cls.checked_by).switch(cls)
        )  # fmt: skip

    @classmethod
    def worklist_order(cls, query):
        """Overdue first, then by urgency, then the oldest deadline."""
        now = utcnow()
        overdue = Case(None, [((cls.owner.is_null(False) & (cls.due_by < now)), 0)], 1)
        urgency = Case(cls.urgency, list(URGENCY_RANK.items()), 3)
        return query.order_by(overdue, urgency, cls.due_by, cls.id)

    @classmethod
    def listing(cls, user: User, state="", urgency="", clinic=None, question_type=""):
        """The queue (hub) or the clinic's questions, overdue first, filtered."""
        query = cls.joined(cls.visible_to(user))
        if state == "open":
            query = query.where(cls.open_condition())
            if user.organisation.is_hub:  # the hub's queue: answered ones wait on the clinic
                query = query.where(cls.state != ANSWERED)
        elif state in CONSULTATION_STATES:
            query = query.where(cls.state == state)
        if urgency:
            query = query.where(cls.urgency == urgency)
        if clinic:
            query = query.where(cls.clinic == clinic)
        if question_type:
            query = query.where(cls.question_type == question_type)
        return cls.worklist_order(query)

    @classmethod
    def awaiting(cls, user: User):
        """What waits on the user's organisation (the navigation count)."""
        return cls.visible_to(user).where(cls.owner == user.organisation_id, cls.open_condition())

    @classmethod
    def page_with_fingerprint(cls, query, size: int) -> tuple[list, str]:
        rows = list(
            query.select_extend(
                fn.COUNT(cls.id).over().alias("matching"),
                fn.MAX(cls.updated_at).over().alias("latest_change"),
            ).limit(size + 1)
        )
        if not rows:
            return rows, cls.fingerprint(query)
        return rows, cls._version(rows[0].matching, rows[0].latest_change)

    @classmethod
    def fingerprint(cls, query) -> str:
        row = query.select(fn.COUNT(cls.id), fn.MAX(cls.updated_at)).order_by().tuples().first()
        return cls._version(*(row or (0, None)))

    @staticmethod
    def _version(count: int, latest) -> str:
        if isinstance(latest, str):  # SQLite hands an aggregate of a datetime back as text
            latest = dt.datetime.fromisoformat(latest)
        return f"{count}-{latest.timestamp() if latest else 0}"

    @classmethod
    def for_patient(cls, user: User, patient: Patient, limit: int = 20):
        return list(
            cls.joined(cls.visible_to(user))
            .where(cls.patient == patient)
            .order_by(cls.created_at.desc())
            .limit(limit)
        )

    @classmethod
    def for_today(cls, user: User, size: int = 10) -> list["Consultation"]:
        """The clinic's open and answered-to-acknowledge questions; the hub's queue."""
        if user.organisation.is_hub:
            wanted = (cls.hub == user.organisation_id) & cls.open_condition()
            wanted &= cls.state != ANSWERED
        else:
            wanted = (cls.clinic == user.organisation_id) & cls.open_condition()
        return list(cls.worklist_order(cls.joined(cls.visible_to(user)).where(wanted)).limit(size))

    # ---- the library of past answers ---------------------------------------------------------
    @classmethod
    def library_hubs(cls, user: User):
        """The hubs whose answers this user reads: their own (hub pharmacists), their
        clinic's hubs (clinic staff)."""
        if user.organisation.is_hub:
            return [user.organisation_id]
        return ClinicHub.select(ClinicHub.hub).where(ClinicHub.clinic == user.organisation_id)

    @classmethod
    def library(cls, user: User, drug: str = "", question_type: str = "", limit: int = 20):
        """Answered questions of the alliance, newest first, found by drug (any name, either
        script: the catalogue's names, or the typed name's beginning) and question type.
        Carries no patient: the rows are read through `library_entry` only."""
        query = cls.select(
            cls.id, cls.drug, cls.drug_text, cls.question_type, cls.details, cls.answer_note,
            cls.answered_at, cls.where_registered, cls.answered_by, cls.hub, cls.cited,
        ).where(cls.hub.in_(cls.library_hubs(user)), cls.state.in_(ANSWERED_STATES))  # fmt: skip
        if question_type:
            query = query.where(cls.question_type == question_type)
        drug = (drug or "").strip()
        if drug:
            key = drug_key(drug)
            if not key:
                return []
            # The catalogue's names in any script, or the typed name's beginning. The ids are
            # fetched first: as a subquery inside the OR, PostgreSQL reads the whole table.
            matches = [row.id for row in Drug.search(drug, limit=10, user=user)]
            condition = prefix_range(cls.drug_key, key)
            if matches:
                condition |= cls.drug.in_(matches)
            query = query.where(condition)
        return list(query.order_by(cls.answered_at.desc(), cls.id.desc()).limit(limit))

    @classmethod
    def similar(cls, user: User, drug_text: str, drug_id, question_type: str) -> list:
        """Up to five past answers about the same drug and question type (before asking)."""
        if not (drug_text or drug_id) or question_type not in QUESTION_TYPES:
            return []
        query = cls.select(cls.id, cls.drug_text, cls.details, cls.answer_note, cls.answered_at)
        same_drug = cls.drug_key == drug_key(drug_text)
        if drug_id:
            same_drug |= cls.drug == drug_id
        query = query.where(
            cls.hub.in_(cls.library_hubs(user)), cls.state.in_(ANSWERED_STATES),
            cls.question_type == question_type, same_drug,
        )  # fmt: skip
        return list(query.order_by(cls.answered_at.desc()).limit(5))

    # ---- asking -----------------------------------------------------------------------------
    @classmethod
    def ask(cls, user: User, hub: Organisation, patient: Patient | None, **fields):
        """A new question from a clinic doctor or nurse to one of its hubs, waiting on the
        hub's pharmacists with a deadline from its urgency."""
        if not (user.has_role(*ASKERS) and user.organisation.is_clinic):
            raise Refused(_l("Only clinic doctors and nurses ask the hub pharmacists."))
        if hub.id not in [h.id for h in user.organisation.hubs()]:
            raise Refused(_l("Choose one of your clinic's hubs."))
        if patient is not None and patient.clinic_id != user.organisation_id:
            raise Refused(_l("Choose a patient of your clinic."))
        now = utcnow()
        timezone = hub.timezone or (
            current_app.config["CLINIC_TIMEZONE"] if has_app_context() else "Asia/Hong_Kong"
        )
        due = answer_due(fields.get("urgency", ROUTINE), now, timezone)
        fields["drug_key"] = drug_key(fields.get("drug_text", ""))
        with write_transaction():
            consultation = cls.create(
                clinic=user.organisation_id, hub=hub, patient=patient, asked_by=user,
                state=OPEN, owner=hub, due_by=due, answer_by=due, created_at=now,
                updated_at=now, **fields,
            )  # fmt: skip
            ConsultationEvent.create(
                consultation=consultation, user=user, organisation=user.organisation_id,
                action="ask", from_state=None, to_state=OPEN, at=now,
            )  # fmt: skip
            AuditEvent.write(user, "ask", "consultation", consultation.id, consultation.drug_text)
        return consultation

    # ---- the moves: one method each, named as the move ---------------------------------------
    def due_for(self, state: str, now: dt.datetime) -> dt.datetime | None:
        """The hub keeps the deadline set when the question was asked; the clinic gets the
        urgency's span from now (to give information, to acknowledge)."""
        if FLOW.owners.get(state) == HUB:
            return self.answer_by
        span = self.answer_by - self.created_at
        return now + max(span, dt.timedelta(hours=1))

    def moves_for(self, user: User) -> list[Move]:
        """The moves this user may make now (a stop for consent is made by the withdrawal)."""
        return [
            m for m in FLOW.moves.values()
            if m.name != "stop_for_consent" and self.refusal(user, m) is None
        ]  # fmt: skip

    def refusal(self, user: User, move: Move) -> object | None:
        base = super().refusal(user, move)
        if base is not None:
            return base
        needs_check = second_check_required(self.hub)
        if move.name == "answer" and needs_check:
            return _l("This hub checks every answer: it goes to a second pharmacist.")
        if move.name == "answer_for_check" and not needs_check:
            return _l("This hub sends answers without a second check.")
        if move.name in ("release", "request_info", "answer", "answer_for_check") and (
            self.claimed_by_id not in (None, user.id)
        ):
            return _l("Another pharmacist has claimed this question.")
        if move.name in ("second_check", "send_back") and self.answered_by_id == user.id:
            return _l("The second check is made by another pharmacist.")
        if move.name == "stop_for_consent" and self.consent_holds():
            return _l("The patient's consent is still valid.")
        return None

    def claim(self, user: User) -> None:
        self.transition(user, "claim", claimed_by=user)

    def release(self, user: User) -> None:
        self.transition(user, "release", claimed_by=None)

    def request_info(self, user: User, question: str) -> None:
        self.check(user, "request_info")
        question = _required(question, _l("Write the question for the clinic."))
        self.transition(user, "request_info", note=question, info_question=question)

    def give_info(self, user: User, answer: str) -> None:
        self.check(user, "give_info")
        answer = _required(answer, _l("Write the answer for the pharmacist."))
        self.transition(user, "give_info", note=answer, info_answer=answer)

    @property
    def answer_move(self) -> str:
        return "answer_for_check" if second_check_required(self.hub) else "answer"

    def answer(self, user: User, lines: list[dict], note: str, references: list[dict]) -> None:
        """The pharmacist's signed answer: guidance lines of approved phrases (each line
        keeps the exact phrase versions), a free-text note, references. Refused when it has
        neither a line nor a note, or uses a phrase not approved (or superseded)."""
        name = self.answer_move
        self.check(user, name)
        lines = [line for line in lines if any(line.values())]
        if not lines and not (note or "").strip():
            raise Refused(_l("Give at least one guidance line or a note."))
        checked = [_checked_line(line, self.hub_id) for line in lines]
        cited = [
            {key: (reference.get(key) or "").strip()[:500] for key in ("title", "source", "link")}
            for reference in references
            if (reference.get("title") or "").strip()
        ]
        with write_transaction():
            self.transition(
                user, name, expect={"claimed_by": user.id},
                answer_note=(note or "").strip() or None, answered_by=user,
                answered_at=utcnow(), checked_by=None, checked_at=None,
                cited=json.dumps(cited, ensure_ascii=False) if cited else None,
            )  # fmt: skip
            GuidanceLine.delete().where(GuidanceLine.consultation == self.id).execute()
            for position, line in enumerate(checked, start=1):
                GuidanceLine.create(consultation=self.id, position=position, **line)

    def second_check(self, user: User) -> None:
        self.transition(user, "second_check", checked_by=user, checked_at=utcnow())

    def send_back(self, user: User, reason: str) -> None:
        self.check(user, "send_back")
        reason = _required(reason, _l("Say what needs changing."))
        self.transition(user, "send_back", note=reason, answered_at=None)

    def acknowledge(self, user: User) -> None:
        self.transition(user, "acknowledge")

    def cancel(self, user: User, reason: str) -> None:
        self.check(user, "cancel")
        reason = _required(reason, _l("Give the reason for cancelling."))
        self.transition(user, "cancel", note=reason, cancel_reason=reason)

    # ---- consent ----------------------------------------------------------------------------
    def consent_holds(self) -> bool:
        """A patient's question goes to the hub with the patient's cross-border consent when
        one was recorded; once it is withdrawn, the open question stops."""
        if not self.patient_id:
            return True
        consents = Consent.select().where(
            Consent.patient == self.patient_id, Consent.scope == CROSS_BORDER
        )
        recorded = consents.exists()
        return not recorded or consents.where(Consent.withdrawn_at.is_null()).exists()

    def stop_for_consent(self, user: User) -> None:
        reason = str(_l("The patient withdrew their consent to share the record."))
        self.transition(user, "stop_for_consent", note=reason, cancel_reason=reason)

    @classmethod
    def stop_all_for_consent(cls, user: User, consent: Consent) -> list["Consultation"]:
        """The patient's open questions, stopped once their cross-border consent is withdrawn."""
        if consent.scope != CROSS_BORDER:
            return []
        move = FLOW.moves["stop_for_consent"]
        stopped = []
        relying = cls.select().where(cls.patient == consent.patient_id, cls.state.in_(move.sources))
        for consultation in relying:
            if consultation.refusal(user, move) is None:
                consultation.stop_for_consent(user)
                stopped.append(consultation)
        return stopped

    # ---- advise a referral -------------------------------------------------------------------
    def may_advise_referral(self, user: User) -> bool:
        return bool(
            self.patient_id and self.referral_id is None and self.state in ANSWERED_STATES
            and user.has_role(PHARMACIST) and user.organisation_id == self.hub_id
        )  # fmt: skip

    def advise_referral(self, user: User):
        """One click: a referral draft for the asking clinic's doctor, pre-filled with the
        question and the answer, linked both ways (the referral names the consultation in its
        reason; the consultation keeps the referral)."""
        if not self.may_advise_referral(user):
            raise Refused(_l("A referral is advised once, on an answered patient question."))
        doctor = self.asked_by if self.asked_by.has_role(DOCTOR) else _clinic_doctor(self.clinic_id)
        if doctor is None:
            raise Refused(_l("The clinic has no doctor to write the referral."))
        reason = str(_l("Advised by the hub pharmacist (drug consultation #%(id)s): %(drug)s",
                        id=self.id, drug=self.drug_text))  # fmt: skip
        summary = f"{self.details}\n\n{self.answer_note or ''}".strip()
        with write_transaction():
            referral = Referral.create_draft(
                doctor, self.patient, to_org=self.hub_id, reason=reason,
                clinical_summary=summary, medications=self.medications,
                allergies=self.allergies,
            )  # fmt: skip
            changed = (
                Consultation.update(referral=referral.id)
                .where(Consultation.id == self.id, Consultation.referral.is_null())
                .execute()
            )
            if changed != 1:
                raise Conflict(_l("A referral was advised a moment ago."))
            self.referral = referral.id
            detail = f"referral {referral.id}"
            AuditEvent.write(user, "advise_referral", "consultation", self.id, detail)
        return referral

    # ---- the answer's parts -----------------------------------------------------------------
    def guidance(self) -> list["GuidanceLine"]:
        return list(GuidanceLine.with_phrases().where(GuidanceLine.consultation == self.id))

    def references(self) -> list[Reference]:
        """The references the answer cites (title, source, optional link)."""
        return [Reference(**cited) for cited in json.loads(self.cited or "[]")]

    @property
    def clinic_may_read_answer(self) -> bool:
        return self.state in ANSWERED_STATES


def drug_key(text: str) -> str:
    """A drug name folded for search: Simplified Chinese, lower-case, no spaces."""
    return fold_chinese(text or "").lower()[:200]


def _required(text: str | None, message) -> str:
    if not (text or "").strip():
        raise Refused(message)
    return text.strip()


def _clinic_doctor(clinic_id: int) -> User | None:
    return User.get_or_none(User.organisation == clinic_id, User.role == DOCTOR, User.active)


PHRASE_PARTS = ("dose", "frequency", "route", "timing", "duration", "warning")


def _checked_line(line: dict, hub_id: int) -> dict:
    """A guidance line's values: the drug, and each part an approved, current phrase of its kind."""
    values = {"drug_text": (line.get("drug_text") or "").strip()[:200]}
    for part in PHRASE_PARTS:
        phrase_id = line.get(part)
        if phrase_id:
            values[part] = Phrase.usable_or_refuse(phrase_id, part, hub=hub_id).id
        else:
            values[part] = None
    return values


class GuidanceLine(BaseModel):
    """One instruction line of an answer: each part an approved phrase, by the exact version
    used (a later version of a phrase never rewrites an answer)."""

    consultation = ForeignKeyField(Consultation, backref="lines", index=True)
    position = IntegerField()
    drug_text = CharField(max_length=200, default="")
    dose = ForeignKeyField(Phrase, null=True)
    frequency = ForeignKeyField(Phrase, null=True)
    route = ForeignKeyField(Phrase, null=True)
    timing = ForeignKeyField(Phrase, null=True)
    duration = ForeignKeyField(Phrase, null=True)
    warning = ForeignKeyField(Phrase, null=True)

    @classmethod
    def with_phrases(cls):
        aliases = {part: alias(Phrase, f"line.{part}") for part in PHRASE_PARTS}
        query = cls.select(cls, *aliases.values())
        for part, phrase in aliases.items():
            query = query.join(phrase, JOIN.LEFT_OUTER, on=getattr(cls, part)).switch(cls)
        return query.order_by(cls.position)

    def parts(self) -> list:
        return [getattr(self, part) for part in PHRASE_PARTS if getattr(self, f"{part}_id")]

    def text_in(self, locale: str) -> str:
        """The line in one language: its phrases in order, the drug first."""
        words = [phrase.text_in(locale) for phrase in self.parts()]
        sep = "，" if locale.startswith("zh") else ", "
        return sep.join(words)


class ConsultationEvent(TimelineEvent):
    """Append-only timeline of a consultation."""

    consultation = ForeignKeyField(Consultation, backref="events", index=True)

    record_field = "consultation"
    states = CONSULTATION_STATES


Consultation.timeline_model = ConsultationEvent
# The queue: the few open questions of a hub, by deadline (a partial index: the planner knows
# how few they are, where an index over every state would look no better than a scan).
Consultation.add_index(
    Consultation.index(Consultation.hub, Consultation.due_by, name="consultation_open_queue").where(
        Consultation.open_condition()
    )
)

CONSULTATION_MODELS = [Consultation, GuidanceLine, ConsultationEvent]
