"""Today: the landing page, one worklist per user."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

from clinic.htmx import render
from clinic.patients.views import today_sections as patient_sections
from clinic.referrals.views import today_sections as referral_sections

bp = Blueprint("today", __name__)


@bp.route("/")
def root():
    return redirect(url_for("today.index"))


@bp.route("/today")
@login_required
def index():
    sections = patient_sections() | referral_sections()
    return render("today/index.html", organisation=current_user.organisation, **sections)
