"""Administration of the alliance: organisations, users, the audit log (a domain adds its own
administration, e.g. a hub's services, through `clinic.domains`).

A hub's administrators govern the whole alliance; a clinic's, their own clinic. Every change is
audited in the same transaction as the change.
"""

import csv
import datetime as dt
import io
import secrets

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import format_datetime, get_timezone
from flask_login import current_user

from clinic.admin.forms import OrganisationForm, UserForm
from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.db import db
from clinic.domains import (
    AuditDetail,
    audit_detail,
    audit_label,
    organisation_sections,
    record_type_label,
)
from clinic.htmx import render
from clinic.inputs import arg_page
from clinic.models import ADMIN, ROLES, AuditEvent, Organisation, User, mfa
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50
CSV_LIMIT = 50_000

# What the core's audited action codes mean; each domain registers its own (clinic.domains).
ACTION_LABELS = {
    "access_denied": _l("Access denied (not theirs to see)"),
    "forbidden": _l("Page refused (role)"),
    "rate_limited": _l("Refused: too many attempts"),
    "login": _l("Logged in"),
    "login_failed": _l("Login failed"),
    "logout": _l("Logged out"),
    "user_activated": _l("User reactivated"),
    "user_deactivated": _l("User deactivated"),
    "user_created": _l("User created"),
    "user_changed": _l("User's role or organisation changed"),
    "password_reset": _l("Password reset by an administrator"),
    "password_changed": _l("Password changed"),
    "mfa_enrolled": _l("Two-step sign-in set up"),
    "mfa_reset": _l("Two-step sign-in reset by an administrator"),
    "second_factor": _l("Second step of sign-in passed"),
    "login_locked": _l("Login refused: too many failed attempts"),
    "organisation_created": _l("Organisation created"),
    "organisation_changed": _l("Organisation changed"),
    "service_created": _l("Hub service created"),
    "service_changed": _l("Hub service changed"),
    "list": _l("List viewed"),
    "view": _l("Record viewed"),
    "create": _l("Created"),
    "edit": _l("Edited"),
    "print": _l("Printed"),
    "export_fhir": _l("Exported as FHIR"),
    "move_refused": _l("Move refused"),
    "export_audit": _l("Audit log exported"),
}


# What the core's audit details say (a domain registers its own `audit_details`).
IDS = r"(?P<ids>[0-9,]*)"
CORE_DETAILS = (
    AuditDetail(r"cli", _l("from the command line")),
    AuditDetail(r"cli: (?P<detail>.+)", _l("from the command line: %(detail)s")),
    AuditDetail(r"(?P<role>\w+) at (?P<org>.+)", _l("%(role)s at %(org)s"), {"role": ROLES}),
    AuditDetail(
        r"(?P<before>\w+) at (?P<old>.+) → (?P<role>\w+) at (?P<org>.+)",
        _l("%(before)s at %(old)s → %(role)s at %(org)s"),
        {"before": ROLES, "role": ROLES},
    ),
    AuditDetail(r"hubs: " + IDS, _l("hub hospitals: %(ids)s")),
    AuditDetail(r"today: " + IDS, _l("Today: %(ids)s")),
    AuditDetail(r"totp", _l("code from the authenticator app")),
    AuditDetail(r"recovery_code", _l("recovery code")),
    AuditDetail(r"account: (?P<email>.*)", _l("account locked: %(email)s")),
    AuditDetail(r"address: (?P<email>.*)", _l("too many attempts from this address: %(email)s")),
)


@bp.app_template_filter("audit_detail")
def detail_label(detail: str | None, object_type: str | None = None) -> str:
    """The detail in the reader's language; one no pattern reads is shown as written."""
    return audit_detail(detail, object_type, CORE_DETAILS)


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


RECORD_TYPES = {  # the core's own; each domain registers its records' (Domain.record_types)
    "patient": _l("Patient"),
    "visit": _l("Visit"),
    "consent": _l("Consent"),
    "user": _l("User"),
    "organisation": _l("Organisation"),
    "page": _l("Page"),
}


@bp.app_template_filter("record_type")
def record_type(code: str | None) -> str:
    """The type of record in the reader's language; an unknown code is shown as it is."""
    if code in RECORD_TYPES:
        return str(RECORD_TYPES[code])
    return record_type_label(code or "") or code or ""


def _audit_filters() -> dict:
    args = request.args
    return {
        name: args.get(name, "").strip()[:40]
        for name in ("action", "object_type", "object_id", "user_id", "patient", "since", "until")
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
    return AuditEvent.search(current_user, **plain, **bounds)


@bp.route("/audit")
@roles_required(ADMIN)
def audit_log():
    filters = _audit_filters()
    page = arg_page()
    events = list(_audit_query(filters).paginate(page, PAGE_SIZE + 1))
    record_types, patients = AuditEvent.record_types(current_user)
    return render(
        "admin/audit.html",
        "admin/_audit_rows.html",
        events=events[:PAGE_SIZE],
        has_more=len(events) > PAGE_SIZE,
        page=page,
        filters=filters,
        actions=AuditEvent.actions(current_user),
        people=AuditEvent.people(current_user),
        record_types=record_types,
        patients=patients,
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
            detail_label(e.detail, e.object_type), e.ip or "",
        ])  # fmt: skip
    audit("export_audit", None, None, str({k: v for k, v in filters.items() if v})[:500])
    response = current_app.response_class("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


# Organisations -----
def governed_organisations():
    """The organisations the current administrator governs (a domain's admin pages use it)."""
    return Organisation.governed_by(current_user)


def governed_organisation(organisation_id: int) -> Organisation:
    return get_visible_or_404(governed_organisations(), organisation_id, "organisation")


def _hub_admin_only() -> None:
    if not current_user.organisation.is_hub:
        audit("forbidden", "page", request.path)
        abort(403)


@bp.route("/organisations")
@roles_required(ADMIN)
def organisations():
    return render("admin/organisations.html", organisations=list(governed_organisations()))


@bp.route("/organisations/new", methods=["GET", "POST"])
@roles_required(ADMIN)
def new_organisation():
    _hub_admin_only()
    form = OrganisationForm()
    if not form.validate_on_submit():
        return _organisation_page(form, None)
    with db.atomic():
        organisation = Organisation.create(**form.values())
        organisation.set_hubs(form.hubs.data)
        audit("organisation_created", "organisation", organisation.id, _hubs_detail(form))
    flash(_("%(name)s is created.", name=organisation.label()), "success")
    return redirect(url_for("admin.organisation", organisation_id=organisation.id), code=303)


@bp.route("/organisations/<int:organisation_id>", methods=["GET", "POST"])
@roles_required(ADMIN)
def organisation(organisation_id: int):
    organisation = governed_organisation(organisation_id)
    data = None if request.method == "POST" else _organisation_data(organisation)
    form = OrganisationForm(organisation=organisation, data=data)
    form.kind.data = organisation.kind  # a clinic stays a clinic: its users' roles depend on it
    if not form.validate_on_submit():
        return _organisation_page(form, organisation)
    with db.atomic():
        Organisation.update(**form.values()).where(Organisation.id == organisation.id).execute()
        organisation.set_hubs(form.hubs.data)
        audit("organisation_changed", "organisation", organisation.id, _hubs_detail(form))
    flash(_("Changes saved."), "success")
    return redirect(url_for("admin.organisation", organisation_id=organisation.id), code=303)


def _organisation_data(organisation: Organisation) -> dict:
    fields = ("name", "name_zh_hant", "name_zh_hans", "kind", "timezone", "address", "phone")
    data = {name: getattr(organisation, name) for name in fields}
    hubs = [hub.id for hub in organisation.hubs()]
    return data | {"mfa_required": organisation.mfa_required, "hubs": hubs}


def _hubs_detail(form: OrganisationForm) -> str:
    return f"hubs: {','.join(map(str, form.hubs.data))}" if form.hubs.data else ""


def _organisation_page(form: OrganisationForm, organisation: Organisation | None):
    status = 422 if form.errors else 200
    sections, context = organisation_sections(organisation) if organisation else ([], {})
    return render(
        "admin/organisation.html", form=form, organisation=organisation, sections=sections,
        status=status, **context,
    )  # fmt: skip


# Users -----
def _user(user_id: int) -> User:
    return get_visible_or_404(User.governed_by(current_user), user_id, "user")


@bp.route("/users")
@roles_required(ADMIN)
def users():
    return render("admin/users.html", users=User.governed_by(current_user))


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(ADMIN)
def new_user():
    form = UserForm(organisations=governed_organisations())
    if not form.validate_on_submit():
        status = 422 if form.errors else 200
        return render("admin/user.html", form=form, user=None, status=status)
    temporary = secrets.token_urlsafe(9)
    with db.atomic():
        user = User.create_with_password(
            temporary,
            email=form.email.data,
            name=form.name.data.strip(),
            role=form.role.data,
            organisation=form.chosen_organisation,
            must_change_password=True,
        )
        audit("user_created", "user", user.id, f"{user.role} at {user.organisation.name}")
    return render("admin/temporary_password.html", user=user, password=temporary)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(ADMIN)
def user(user_id: int):
    user = _user(user_id)
    form = UserForm(obj=user, organisations=governed_organisations(), user=user)
    if request.method == "GET":
        form.organisation.data = user.organisation_id
    if not form.validate_on_submit():
        status = 422 if form.errors else 200
        return render("admin/user.html", form=form, user=user, status=status)
    before = f"{user.role} at {user.organisation.name}"
    with db.atomic():
        User.update(name=form.name.data.strip()).where(User.id == user.id).execute()
        if (form.role.data, form.organisation.data) != (user.role, user.organisation_id):
            user.move_to(form.chosen_organisation, form.role.data)
        audit(
            "user_changed", "user", user.id, f"{before} → {user.role} at {user.organisation.name}"
        )
    flash(_("Changes saved."), "success")
    return redirect(url_for("admin.user", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles_required(ADMIN)
def reset_password(user_id: int):
    user = _user(user_id)
    with db.atomic():
        temporary = user.reset_password()
        audit("password_reset", "user", user.id)
    return render("admin/temporary_password.html", user=user, password=temporary)


@bp.route("/users/<int:user_id>/second-factor", methods=["POST"])
@roles_required(ADMIN)
def reset_second_factor(user_id: int):
    user = _user(user_id)
    with db.atomic():
        mfa.reset(user)
        audit("mfa_reset", "user", user.id)
    flash(
        _("%(name)s sets up two-step sign-in again at the next login.", name=user.name), "success"
    )
    return redirect(url_for("admin.user", user_id=user.id), code=303)


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(ADMIN)
def set_active(user_id: int):
    user = _user(user_id)
    if user.id == current_user.id:
        flash(_("You cannot deactivate yourself."), "error")
    elif request.form.get("active") == "1":
        with db.atomic():
            user.reactivate()
            audit("user_activated", "user", user.id)
        flash(_("%(name)s can log in again.", name=user.name), "success")
    else:
        with db.atomic():
            user.deactivate()
            audit("user_deactivated", "user", user.id)
        flash(_("%(name)s is deactivated and logged out everywhere.", name=user.name), "success")
    return redirect(url_for("admin.user", user_id=user.id), code=303)
