"""Administration: the audit log and the people who may log in."""

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.domains import audit_label
from clinic.htmx import render
from clinic.models import ADMIN, AuditEvent, Organisation, User

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50

# What the core's audited action codes mean; each domain registers its own (clinic.domains).
ACTION_LABELS = {
    "access_denied": _l("Access denied (not theirs to see)"),
    "forbidden": _l("Page refused (role)"),
    "login": _l("Logged in"),
    "login_failed": _l("Login failed"),
    "logout": _l("Logged out"),
    "user_activated": _l("User reactivated"),
    "user_deactivated": _l("User deactivated"),
    "list": _l("List viewed"),
    "view": _l("Record viewed"),
    "create": _l("Created"),
    "edit": _l("Edited"),
    "print": _l("Printed"),
    "export_fhir": _l("Exported as FHIR"),
    "move_refused": _l("Move refused"),
}


@bp.app_template_filter("action_label")
def action_label(code: str, object_type: str | None = None) -> str:
    """The action in the reader's language; an unknown code is shown as it is."""
    if code in ACTION_LABELS:
        return str(ACTION_LABELS[code])
    return audit_label(code, object_type)


@bp.route("/")
@roles_required(ADMIN)
def index():
    return redirect(url_for("admin.audit_log"))


@bp.route("/audit")
@roles_required(ADMIN)
def audit_log():
    filters = {
        "action": request.args.get("action", ""),
        "object_type": request.args.get("object_type", ""),
        "user_email": request.args.get("user_email", ""),
    }
    page = max(request.args.get("page", 1, type=int), 1)
    events = list(AuditEvent.search(**filters).paginate(page, PAGE_SIZE + 1))
    return render(
        "admin/audit.html",
        "admin/_audit_rows.html",
        events=events[:PAGE_SIZE],
        has_more=len(events) > PAGE_SIZE,
        page=page,
        filters=filters,
        actions=AuditEvent.actions(),
    )


@bp.route("/users")
@roles_required(ADMIN)
def users():
    people = (
        User.select(User, Organisation).join(Organisation).order_by(Organisation.name, User.name)
    )
    return render("admin/users.html", users=people)


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(ADMIN)
def set_active(user_id: int):
    user = get_visible_or_404(User.select(), user_id, "user")
    if user.id == current_user.id:
        flash(_("You cannot deactivate yourself."), "error")
    elif request.form.get("active") == "1":
        User.update(active=True).where(User.id == user.id).execute()
        audit("user_activated", "user", user.id)
        flash(_("%(name)s can log in again.", name=user.name), "success")
    else:
        user.deactivate()
        audit("user_deactivated", "user", user.id)
        flash(_("%(name)s is deactivated and logged out everywhere.", name=user.name), "success")
    return redirect(url_for("admin.users"), code=303)
