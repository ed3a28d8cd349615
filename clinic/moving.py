"""The one way a view makes a workflow move a user asked for (every domain's move view)."""

from flask import flash
from flask_login import current_user

from clinic.auth.access import audit
from clinic.htmx import trigger
from clinic.workflow import Move, TransitionError


def make_move(record, move: Move, data: dict) -> bool:
    """Make `move` on `record` with the form's `data`; the outcome is flashed (and a refusal
    audited). True when it was made; the counts everywhere are told to refresh."""
    try:
        getattr(record, move.name)(current_user._get_current_object(), **data)
    except TransitionError as error:
        audit("move_refused", record.audit_type, record.id, f"{move.name}: {error}")
        flash(error.message, "error")
        return False
    flash(move.done, "success")
    trigger("counts-changed")
    return True
