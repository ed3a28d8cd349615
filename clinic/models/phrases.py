"""The hub's bilingual phrase library (drug consultations).

A phrase is the smallest piece of guidance a pharmacist vouches for, in English, Traditional
(HK usage) and Simplified (mainland usage) Chinese. Phrases are never rewritten: a change is a
new version that a second pharmacist approves; an answer keeps the version it used.
"""

from peewee import JOIN, CharField, DateTimeField, ForeignKeyField, IntegerField, fn

from clinic.db import alias, is_sqlite, utcnow, write_transaction
from clinic.inputs import parse_id
from clinic.models.core import PHARMACIST, AuditEvent, BaseModel, Organisation, User
from clinic.models.patients import CJK, fold_chinese
from clinic.translation import lazy_gettext as _l
from clinic.workflow import Refused

__all__ = [
    "APPROVED", "DRAFT", "PHRASE_KINDS", "PHRASE_MODELS", "PHRASE_STATES", "SUPERSEDED", "Phrase",
]  # fmt: skip

PHRASE_KINDS = {
    "dose": _l("Dose"),
    "frequency": _l("Frequency"),
    "route": _l("Route"),
    "timing": _l("Timing"),
    "duration": _l("Duration"),
    "warning": _l("Warning"),
}
DRAFT, APPROVED, SUPERSEDED = "draft", "approved", "superseded"
PHRASE_STATES = {
    DRAFT: _l("Draft: waiting for a second pharmacist"),
    APPROVED: _l("Approved"),
    SUPERSEDED: _l("Superseded"),
}
PHRASE_MAX = 200


def _refuse_unless_writer(user: User, hub_id: int) -> None:
    if not (
        user.has_role(PHARMACIST) and user.organisation.is_hub and user.organisation_id == hub_id
    ):
        raise Refused(_l("Only a pharmacist of the hub writes its phrases."))


class Phrase(BaseModel):
    """One version of an instruction phrase. Rows are never rewritten, only moved along
    draft → approved → superseded; a change is a new row (version) of the same lineage."""

    hub = ForeignKeyField(Organisation, backref="+")  # each hub vouches for its own
    kind = CharField(choices=list(PHRASE_KINDS.items()))
    lineage = IntegerField(null=True)  # the id of version 1; set in the writing transaction
    version = IntegerField(default=1)
    text_en = CharField(max_length=PHRASE_MAX)
    text_hant = CharField(max_length=PHRASE_MAX)
    text_hans = CharField(max_length=PHRASE_MAX)
    state = CharField(default=DRAFT)
    written_by = ForeignKeyField(User, backref="+")
    written_at = DateTimeField(default=utcnow)
    approved_by = ForeignKeyField(User, null=True, backref="+")
    approved_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("lineage", "version"), True),  # two revisions at once: one of them is refused
            (("hub", "kind", "state", "text_en"), False),  # the pickers: approved, of a kind
        )

    @property
    def kind_label(self) -> str:
        return str(PHRASE_KINDS.get(self.kind, self.kind))

    @property
    def state_label(self) -> str:
        return str(PHRASE_STATES.get(self.state, self.state))

    def text_in(self, locale) -> str:
        locale = str(locale or "en")
        if locale.startswith("zh_Hans"):
            return self.text_hans
        if locale.startswith("zh"):
            return self.text_hant
        return self.text_en

    # Writing -----
    @classmethod
    def write(cls, user: User, kind: str, text_en: str, text_hant: str, text_hans: str):
        """A new phrase: version 1, a draft until a second pharmacist approves it."""
        _refuse_unless_writer(user, user.organisation_id)
        if kind not in PHRASE_KINDS:
            raise Refused(_l("Unknown kind of phrase."))
        with write_transaction():
            phrase = cls.create(
                hub=user.organisation_id, kind=kind, text_en=text_en, text_hant=text_hant,
                text_hans=text_hans, written_by=user, written_at=utcnow(),
            )  # fmt: skip
            cls.update(lineage=phrase.id).where(cls.id == phrase.id).execute()
            phrase.lineage = phrase.id
            AuditEvent.write(user, "phrase_write", "phrase", phrase.id, kind)
        return phrase

    def revise(self, user: User, text_en: str, text_hant: str, text_hans: str) -> "Phrase":
        """A new draft version of this approved phrase; this one stays usable until the new
        one is approved. Refused if this is not the current version or one already waits."""
        from peewee import IntegrityError

        cls = type(self)
        _refuse_unless_writer(user, self.hub_id)
        if self.state != APPROVED:
            raise Refused(_l("Only the approved version of a phrase can be changed."))
        try:
            with write_transaction():
                # Still the approved version (locked: an approval of a newer one waits).
                current = cls.select(cls.state).where(cls.id == self.id)
                if not is_sqlite():
                    current = current.for_update()
                if current.scalar() != APPROVED:
                    raise Refused(_l("Only the approved version of a phrase can be changed."))
                if cls.select().where(cls.lineage == self.lineage, cls.state == DRAFT).exists():
                    raise Refused(_l("A new version of this phrase already waits for approval."))
                latest = cls.select(fn.MAX(cls.version)).where(cls.lineage == self.lineage).scalar()
                phrase = cls.create(
                    hub=self.hub_id, kind=self.kind, lineage=self.lineage,
                    version=(latest or 0) + 1, text_en=text_en, text_hant=text_hant,
                    text_hans=text_hans,
                    written_by=user, written_at=utcnow(),
                )  # fmt: skip
                AuditEvent.write(user, "phrase_revise", "phrase", phrase.id, f"v{phrase.version}")
        except IntegrityError:
            raise Refused(_l("A new version of this phrase already waits for approval.")) from None
        return phrase

    def approval_refusal(self, user: User):
        """Why this user may not approve this version (None: they may)."""
        if not (user.has_role(PHARMACIST) and user.organisation_id == self.hub_id):
            return _l("Only a hub pharmacist can approve a phrase.")
        if self.written_by_id == user.id:
            return _l("A second pharmacist must approve this phrase: you wrote it.")
        if self.state != DRAFT:
            return _l(
                "This version is no longer a draft: it is %(state)s.",
                state=PHRASE_STATES.get(self.state, self.state),
            )
        return None

    def approve(self, user: User) -> None:
        """Draft → approved, once (compare-and-set: of two pharmacists approving at once one
        wins, the other is refused); the version it replaces becomes superseded."""
        reason = self.approval_refusal(user)
        if reason is not None:
            raise Refused(reason)
        cls = type(self)
        now = utcnow()
        with write_transaction():
            won = (
                cls.update(state=APPROVED, approved_by=user, approved_at=now)
                .where(cls.id == self.id, cls.state == DRAFT, cls.written_by != user.id)
                .execute()
            )
            if won != 1:
                current = cls.get_by_id(self.id)
                self.__data__.update(current.__data__)
                raise Refused(
                    _l(
                        "This version is no longer a draft: it is %(state)s.",
                        state=PHRASE_STATES.get(self.state, self.state),
                    )
                )
            cls.update(state=SUPERSEDED).where(
                cls.lineage == self.lineage, cls.id != self.id, cls.state == APPROVED
            ).execute()
            self.state, self.approved_by, self.approved_at = APPROVED, user, now
            AuditEvent.write(user, "phrase_approve", "phrase", self.id, f"v{self.version}")

    # Reading -----
    @classmethod
    def usable(cls, kind: str | None = None, hub=None):
        """The approved (current) phrases (of a hub, of one kind if given), in English order."""
        query = cls.select().where(cls.state == APPROVED)
        if hub is not None:
            query = query.where(cls.hub == hub)
        if kind:
            query = query.where(cls.kind == kind)
        return query.order_by(cls.kind, cls.text_en, cls.id)

    @classmethod
    def usable_or_refuse(cls, phrase_id, kind: str | None = None, hub=None) -> "Phrase":
        """The approved phrase with this id (of this kind, of this hub); Refused with the
        reason otherwise (an id sent by hand: unknown, a draft, superseded, another kind)."""
        phrase_id = parse_id(phrase_id)
        phrase = cls.get_or_none(cls.id == phrase_id) if phrase_id else None
        if phrase is None or (hub is not None and phrase.hub_id != getattr(hub, "id", hub)):
            raise Refused(_l("Unknown phrase."))
        if phrase.state == DRAFT:
            raise Refused(_l("This phrase is not approved yet and cannot be used."))
        if phrase.state == SUPERSEDED:
            raise Refused(_l("This phrase has a newer approved version: pick it again."))
        if kind and phrase.kind != kind:
            label = PHRASE_KINDS.get(kind, kind)
            raise Refused(_l("This phrase is not a %(kind)s phrase.", kind=label))
        return phrase

    @classmethod
    def _with_people(cls, query):
        """The phrases with who wrote (`written_by`) and approved (`approved_by`) each."""
        writer, approver = alias(User, "phrase.writer"), alias(User, "phrase.approver")
        return (
            query.select_extend(writer, approver)
            .join(writer, on=(cls.written_by == writer.id), attr="written_by")
            .switch(cls)
            .join(
                approver, JOIN.LEFT_OUTER, on=(cls.approved_by == approver.id), attr="approved_by"
            )
        )

    @classmethod
    def matching(cls, query, text: str):
        """Phrases whose text in any script contains `text` (Chinese compared folded)."""
        text = (text or "").strip()[:PHRASE_MAX]
        if not text:
            return query
        if CJK.search(text):
            folded = fold_chinese(text)
            return query.where(cls.text_hant.contains(text) | cls.text_hans.contains(folded))
        return query.where(cls.text_en.contains(text))

    @classmethod
    def library(cls, user: User, kind: str = "", state: str = "", query: str = "") -> list:
        """The hub's phrases for the library page, by kind (in PHRASE_KINDS order), then
        English text: current ones (drafts and approved) unless a state (or "all") is asked."""
        rows = cls._with_people(cls.select().where(cls.hub == user.organisation_id))
        if kind:
            rows = rows.where(cls.kind == kind)
        if state in PHRASE_STATES:
            rows = rows.where(cls.state == state)
        elif state != "all":
            rows = rows.where(cls.state.in_((DRAFT, APPROVED)))
        order = list(PHRASE_KINDS)
        found = cls.matching(rows, query).order_by(cls.text_en, cls.version)
        return sorted(found, key=lambda p: order.index(p.kind) if p.kind in order else 99)

    @classmethod
    def pick(cls, user: User, kind: str, query: str = "", limit: int = 30):
        """Approved phrases of a kind of the user's hub, for a picker."""
        return cls.matching(cls.usable(kind, user.organisation_id), query).limit(limit)

    @classmethod
    def awaiting_approval(cls, user: User):
        """Drafts of the user's hub written by someone else: theirs to approve."""
        return cls.select().where(
            cls.hub == user.organisation_id, cls.state == DRAFT, cls.written_by != user.id
        )

    @classmethod
    def with_versions(cls, user: User, phrase_id) -> "Phrase | None":
        """The version with this id of the user's hub, with every version of its lineage,
        newest first, as `.version_list` (one query)."""
        phrase_id = parse_id(phrase_id)
        if not phrase_id:
            return None
        lineage = cls.select(cls.lineage).where(
            cls.id == phrase_id, cls.hub == user.organisation_id
        )
        rows = list(
            cls._with_people(cls.select())
            .where(cls.lineage.in_(lineage))
            .order_by(cls.version.desc())
        )
        found = next((row for row in rows if row.id == phrase_id), None)
        if found is not None:
            found.version_list = rows
        return found

    def revisable(self) -> bool:
        """Approved, and no newer version waiting (needs `.version_list`)."""
        waiting = any(v.state == DRAFT for v in getattr(self, "version_list", ()))
        return self.state == APPROVED and not waiting


PHRASE_MODELS = [Phrase]
