"""Today: the landing page, one worklist per user, assembled from what each domain registers."""

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from clinic.auth.access import audit
from clinic.domains import count_label, nav_counts, nav_version, registered, today_sections
from clinic.htmx import fragment, not_modified, render
from clinic.translation import language

bp = Blueprint("today", __name__)


@bp.app_context_processor
def navigation():
    return {
        "nav_domains": registered, "nav_counts": nav_counts, "nav_version": nav_version,
        "count_label": count_label, "main_nav": main_nav,
    }  # fmt: skip


MAIN_NAV = "clinic.main_nav"
MAIN_NAV_KEPT = 4096  # past this many the kept navigations start afresh (memory stays bounded)


def main_nav() -> Markup:
    """The navigation links with their badges, rendered once for all they show: the reader
    (role and organisation), the language, the section the page is in and the counts (the
    nav poll's version), then reused by every page with those. Under TESTING each page also
    renders it afresh and fails if it differs from the kept one."""
    key = (
        current_user.reader_key, language(), request.blueprint, request.script_root,
        nav_version(),
    )  # fmt: skip
    kept = current_app.extensions.setdefault(MAIN_NAV, {})
    html = kept.get(key)
    if html is None or current_app.testing:
        fresh = Markup(render_template("_main_nav.html"))  # noqa: S704 (escaped by Jinja)
        if html is not None and html != fresh:
            raise AssertionError(f"the navigation shows more than its key {key!r}")
        if len(kept) >= MAIN_NAV_KEPT:
            kept.clear()
        html = kept.setdefault(key, fresh)
    return html


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
