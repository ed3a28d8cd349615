"""Administration: the audit log and the people who may log in."""

import csv
import datetime as dt
import io

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import format_datetime, get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.domains import audit_label
from clinic.htmx import render
from clinic.models import ADMIN, AuditEvent, Organisation, User

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50
CSV_LIMIT = 50_000

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
    "export_audit": _l("Audit log exported"),
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


RECORD_TYPES = {
    "patient": _l("Patient"),
    "referral": _l("Referral"),
    "visit": _l("Visit"),
    "consent": _l("Consent"),
    "user": _l("User"),
}


@bp.app_template_filter("record_type")
def record_type(code: str | None) -> str:
    return str(RECORD_TYPES.get(code, code or ""))


def _audit_filters() -> dict:
    args = request.args
    return {
        name: args.get(name, "").strip()[:40]
        for name in ("action", "object_type", "object_id", "user_id", "since", "until")
    }


def _audit_query(filters: dict):
    """The filtered events; the dates are days on the organisation's calendar."""
    bounds = {}
    for name, extra in (("since", 0), ("until", 1)):
        try:
            day = dt.date.fromisoformat(filters[name]) + dt.timedelta(days=extra)
        except ValueError:
            continue
        local = dt.datetime.combine(day, dt.time(), get_timezone())
        bounds[name] = local.astimezone(dt.UTC).replace(tzinfo=None)
    plain = {k: v for k, v in filters.items() if k not in ("since", "until")}
    return AuditEvent.search(**plain, **bounds)


@bp.route("/audit")
@roles_required(ADMIN)
def audit_log():
    filters = _audit_filters()
    page = max(request.args.get("page", 1, type=int), 1)
    events = list(_audit_query(filters).paginate(page, PAGE_SIZE + 1))
    return render(
        "admin/audit.html",
        "admin/_audit_rows.html",
        events=events[:PAGE_SIZE],
        has_more=len(events) > PAGE_SIZE,
        page=page,
        filters=filters,
        actions=AuditEvent.actions(),
        people=AuditEvent.people(),
        record_types=AuditEvent.record_types(),
    )


@bp.route("/audit.csv")
@roles_required(ADMIN)
def audit_csv():
    """The filtered rows as CSV (UTF-8 with a byte-order mark, so spreadsheets read Chinese)."""
    filters = _audit_filters()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("When"), _("User"), _("Organisation"), _("Action"), _("Record"),
                     _("Detail"), _("Address")])  # fmt: skip
    for e in _audit_query(filters).limit(CSV_LIMIT):
        writer.writerow([
            format_datetime(e.at, "yyyy-MM-dd HH:mm:ss"),
            e.user.name if e.user_id else "",
            e.organisation.label() if e.organisation_id else "",
            action_label(e.action, e.object_type),
            f"{record_type(e.object_type)} #{e.object_id}" if e.object_id else "",
            e.detail or "", e.ip or "",
        ])  # fmt: skip
    audit("export_audit", None, None, str({k: v for k, v in filters.items() if v})[:500])
    response = current_app.response_class("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


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
