"""State machines as data, shared by every domain (referrals, the check-in queue, …).

A workflow is a table of moves. Each move has ONE name, used for its URL slug (with dashes),
the model method that makes it, its form, its button label, its success message and its audit
code. Making a move is one compare-and-set (`UPDATE … WHERE id = ? AND state = ?`) inside a
write transaction that also writes exactly one timeline event and the audit row, so a change
that committed always has both, and of two concurrent moves exactly one wins.

No black holes: a workflow names, for each open state, the side whose move it is; the record's
owner (an organisation) and due-by time are set on every move.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app, has_app_context
from flask_babel import LazyString
from peewee import JOIN

from clinic.db import AtRun, utcnow, write_transaction
from clinic.translation import lazy_gettext as _l

if TYPE_CHECKING:  # the models import this module: no import of them at load time
    from clinic.models.core import TimelineEvent, User


def access_window_days() -> int:
    """How long parties other than the patient's own clinic keep access after a record closes."""
    return current_app.config["HUB_ACCESS_DAYS_AFTER_CLOSE"] if has_app_context() else 30


def open_or_closed_within(is_open, closed_at, days: int | None = None):
    """Need to know, as SQL: the record is open, or was closed (`closed_at`) less than the
    access window ago (config HUB_ACCESS_DAYS_AFTER_CLOSE). Every record that carries a
    patient's data grants parties other than the patient's own clinic access only under it."""
    return is_open | (closed_at >= AtRun(window_start, days))


def window_start(days: int | None = None) -> dt.datetime:
    """A record closed before this moment is out of the access window."""
    return utcnow() - dt.timedelta(days=access_window_days() if days is None else days)


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
    """Someone else moved the record first; it now shows the current state."""


@dataclass(frozen=True)
class Move:
    """One move: from these states to `target`, made by these roles of the `side` organisation.

    `side` names the record's organisation field whose staff make the move ("from_org",
    "to_org", "clinic" …). `form`: the move asks for input first (else it is one button).
    """

    name: str
    sources: tuple[str, ...]
    target: str
    side: str
    roles: tuple[str, ...]
    label: object
    done: object
    form: bool = False
    danger: bool = False
    undo: bool = False  # the move back from another: shown apart, never as the primary button

    @property
    def slug(self) -> str:
        return self.name.replace("_", "-")


class Workflow:
    """The states of one kind of record, its moves, and whose move each open state is."""

    def __init__(
        self, states: dict, moves: Iterable[Move], owners: dict[str, str], open_states=None,
        conflict=None,
    ):  # fmt: skip
        self.states = states
        self.moves = {move.name: move for move in moves}
        self.owners = owners  # open state → side whose move it is
        self.open_states = tuple(owners) if open_states is None else tuple(open_states)
        self.conflict = conflict or _l("Someone else moved this first: it is now %(state)s.")

    def by_slug(self, slug: str) -> Move | None:
        return self.moves.get(slug.replace("-", "_"))

    def label(self, state: str) -> str:
        return str(self.states.get(state, state))

    def is_open(self, state: str) -> bool:
        return state in self.open_states


class Stateful:
    """Mixin for a model moved by a workflow: fields `state`, `updated_at` (and, when the
    workflow has owners, `owner` and `due_by`); class attributes `timeline_model` and
    `audit_type`; the property `workflow`."""

    timeline_model: type[TimelineEvent]
    audit_type: str
    workflow: Workflow

    @classmethod
    def open_condition(cls):
        """SQL: the record is in an open state of its workflow."""
        return cls.state.in_(cls.workflow.open_states)

    @classmethod
    def access_window(cls):
        """SQL: open, or closed (last moved) less than the access window ago."""
        return open_or_closed_within(cls.open_condition(), cls.updated_at)

    @property
    def state_label(self) -> str:
        return self.workflow.label(self.state)

    @property
    def is_open(self) -> bool:
        return self.workflow.is_open(self.state)

    @property
    def is_overdue(self) -> bool:
        due_by = getattr(self, "due_by", None)
        return bool(self.is_open and due_by and due_by < utcnow())

    def audit_subject(self) -> tuple[str, int, str]:
        """(object type, id, detail) of the audit row a move writes."""
        return self.audit_type, self.id, self.state

    def due_for(self, state: str, now: dt.datetime) -> dt.datetime | None:
        """When the owner of `state` must have moved; None: no deadline."""
        return None

    def moved_values(self, values: dict) -> dict:
        """The columns a move writes (`values`), with what the model derives from them (kept
        in the same compare-and-set UPDATE)."""
        return values

    def refusal(self, user: User, move: Move) -> object | None:
        """Why this user may not make this move now (None: they may)."""
        if self.state not in move.sources:
            return _l("Not possible: it is %(state)s.", state=self.workflow.states[self.state])
        if user.organisation_id != getattr(self, f"{move.side}_id"):
            return _l("This is not yours to move.")
        if not user.has_role(*move.roles):
            return _l("Your role cannot make this move.")
        return None

    def check(self, user: User, name: str) -> Move:
        move = self.workflow.moves.get(name)
        if move is None:
            raise Refused(
                _l("Not possible: it is %(state)s.", state=self.workflow.states[self.state])
            )
        reason = self.refusal(user, move)
        if reason is not None:
            raise Refused(reason)
        return move

    def moves_for(self, user: User) -> list[Move]:
        """The moves this user may make now (for showing the right buttons)."""
        return [m for m in self.workflow.moves.values() if self.refusal(user, m) is None]

    def transition(
        self, user: User, name: str, note: str | None = None, expect: dict | None = None, **fields
    ) -> None:
        """Make move `name`: compare-and-set from the state this object holds, one timeline
        event and one audit row, all in one transaction. Conflict if someone moved it first.

        `expect`: further columns that must still hold the values this user saw.
        """
        from clinic.models.core import AuditEvent

        move = self.check(user, name)
        model = type(self)
        now = utcnow()
        values = {"state": move.target, "updated_at": now, **self._deadline(move.target, now)}
        values = self.moved_values(values | fields)
        conditions = [model.id == self.id, model.state == self.state]
        conditions += [getattr(model, column) == seen for column, seen in (expect or {}).items()]
        seen_state = self.state
        with write_transaction():
            if model.update(**values).where(*conditions).execute() != 1:
                self._lost_the_race()
            for column, value in values.items():
                setattr(self, column, value)
            self.timeline_model.create(
                **{self.timeline_model.record_field: self.id},
                user=user, organisation=user.organisation_id, action=move.name,
                from_state=seen_state, to_state=move.target, note=note, at=now,
            )  # fmt: skip
            AuditEvent.write(user, move.name, *self.audit_subject())

    def _deadline(self, state: str, now: dt.datetime) -> dict:
        if not self.workflow.owners:
            return {}
        side = self.workflow.owners.get(state)
        return {
            "owner": getattr(self, f"{side}_id") if side else None,
            "due_by": self.due_for(state, now) if side else None,
        }

    def _lost_the_race(self) -> None:
        model = type(self)
        current = model.get_by_id(self.id)
        self.__data__.update(current.__data__)
        state = self.workflow.states[self.state]
        raise Conflict(LazyString(operator.mod, self.workflow.conflict, {"state": state}))

    def timeline(self):
        event = self.timeline_model
        return (
            event.select(event, event.user.rel_model)
            .join(event.user.rel_model, JOIN.LEFT_OUTER, on=event.user)
            .where(getattr(event, event.record_field) == self.id)
            .order_by(event.at, event.id)
        )
