"""The access checks every view uses: roles, organisation scoping (404, audited), audit."""

from collections.abc import Callable
from functools import wraps

from flask import abort, request
from flask_login import current_user, login_required
from peewee import ModelSelect

from clinic.models import AuditEvent


def audit(action: str, object_type: str | None = None, object_id=None, detail: str | None = None):
    """Append one event to the audit log for the current user and request."""
    user = current_user if current_user and current_user.is_authenticated else None
    return AuditEvent.write(user, action, object_type, object_id, detail)


def roles_required(*roles: str) -> Callable:
    """Log-in required, and one of these roles; anyone else gets 403 (and it is audited)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                audit("forbidden", "page", request.path)
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def get_visible_or_404(visible: ModelSelect, object_id, object_type: str):
    """The object with this id among those the user may see; otherwise 404, audited.

    404 rather than 403, so another organisation's records are never confirmed to exist.
    """
    model = visible.model
    found = visible.where(model.id == object_id).first() if str(object_id).isdigit() else None
    if found is None:
        audit("access_denied", object_type, object_id)
        abort(404)
    return found
