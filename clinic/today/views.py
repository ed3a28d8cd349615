"""Today: the landing page, one worklist per user."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

from clinic.htmx import render

bp = Blueprint("today", __name__)


@bp.route("/")
def root():
    return redirect(url_for("today.index"))


@bp.route("/today")
@login_required
def index():
    from clinic.patients.views import today_sections

    return render("today/index.html", organisation=current_user.organisation, **today_sections())
