"""Today: the landing page, one worklist per user, assembled from what each domain registers."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

from clinic.auth.access import audit
from clinic.domains import count_label, nav_counts, nav_version, registered, today_sections
from clinic.htmx import fragment, not_modified, render

bp = Blueprint("today", __name__)


@bp.app_context_processor
def navigation():
    return {
        "nav_domains": registered, "nav_counts": nav_counts, "nav_version": nav_version,
        "count_label": count_label,
    }  # fmt: skip


@bp.route("/")
def root():
    return redirect(url_for("today.index"))


@bp.route("/today")
@login_required
def index():
    sections = today_sections(current_user)
    context = {key: value for _template, values, _ids in sections for key, value in values.items()}
    shown = sorted({patient for _template, _values, ids in sections for patient in ids})
    if shown:
        audit("list", "patient", None, "today: " + ",".join(map(str, shown)))
    return render(
        "today/index.html",
        organisation=current_user.organisation,
        sections=[template for template, _values, _ids in sections],
        **context,
    )


@bp.route("/today/counts")
@login_required
def counts():
    """The navigation's counts (polled); 204 while the client's are current."""
    if response := not_modified(nav_version):
        return response
    return fragment("today/_counts.html")
