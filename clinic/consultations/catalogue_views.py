"""The drug catalogue and the phrase library: pages, the as-you-type search, the pickers.

Each hub keeps its own catalogue (its pharmacists and administrators) and its own phrase
library (its pharmacists: one writes, another approves). Clinic staff search the catalogues
of the hubs they refer to, from the question form.
"""

import re
from functools import wraps

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from clinic.auth.access import audit, deny, get_visible_or_404, roles_required
from clinic.consultations import catalogue_forms as forms
from clinic.htmx import fragment, render
from clinic.inputs import parse_id
from clinic.models import ADMIN, DOCTOR, NURSE, PHARMACIST, SubmissionKey
from clinic.models.drugs import KEEPERS, Drug
from clinic.models.phrases import DRAFT, PHRASE_KINDS, PHRASE_STATES, Phrase
from clinic.translation import gettext as _
from clinic.workflow import TransitionError

catalogue_bp = Blueprint("catalogue", __name__, url_prefix="/consultations")
SEARCHERS = (DOCTOR, NURSE, PHARMACIST, ADMIN)
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,59}")
PICK_LIMIT = 30


def hub_roles_required(*roles: str):
    """These roles, of a hub; anyone else gets 403 (audited)."""

    def decorator(view):
        @wraps(view)
        @roles_required(*roles)
        def wrapped(*args, **kwargs):
            if not current_user.organisation.is_hub:
                audit("forbidden", "page", request.path)
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def nav_count(user):
    """Phrase drafts another pharmacist of the hub wrote, waiting on this one to approve."""
    if user.has_role(PHARMACIST) and user.organisation.is_hub:
        return Phrase.awaiting_approval(user)
    return None


def _field_name(default: str) -> str:
    """The form field name a picker's choices carry (the asking form says which)."""
    name = request.args.get("name", "")
    return name if FIELD_NAME.fullmatch(name) else default


def _query(*names: str) -> str:
    """What was typed: `q`, or the field of the form that asks (htmx sends an input's value
    under its own name: `generic_name` of the catalogue form, `drug` of the question form)."""
    for name in ("q", *names):
        if value := request.args.get(name):
            return value[:100]
    return ""


# ---- drugs --------------------------------------------------------------------------------
@catalogue_bp.route("/drugs")
@hub_roles_required(*KEEPERS)
def drugs():
    q = _query()
    rows = list(Drug.catalogue(current_user, q))
    return render(
        "consultations/drugs/index.html", "consultations/drugs/_rows.html", drugs=rows, q=q
    )


@catalogue_bp.route("/drugs/search")
@roles_required(*SEARCHERS)
def drug_search():
    """As-you-type matches from the user's catalogues (a fragment for the question form)."""
    q = _query("generic_name", "drug")
    matches = list(Drug.search(q, user=current_user))
    return fragment(
        "consultations/drugs/_matches.html", matches=matches, q=q,
        name=_field_name(""), can_edit=_keeps_catalogue(),
        selected=parse_id(request.args.get("selected", "")),
    )  # fmt: skip


def _keeps_catalogue() -> bool:
    return current_user.organisation.is_hub and current_user.has_role(*KEEPERS)


@catalogue_bp.route("/drugs/new", methods=["GET", "POST"])
@hub_roles_required(*KEEPERS)
def new_drug():
    form = forms.NewDrugForm(hub_id=current_user.organisation_id)
    if request.method == "POST" and (
        earlier := SubmissionKey.result_of(form.submission_key.data, current_user.id)
    ):
        return redirect(earlier, code=303)  # sent twice: the first one's result
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("consultations/drugs/new.html", status=status, form=form)
    user = current_user._get_current_object()

    def create() -> str:
        drug = Drug.add(user, form.drug_data())
        return url_for("catalogue.drugs", _anchor=f"drug-{drug.id}")

    url = SubmissionKey.once(form.submission_key.data, user, create)
    flash(_("Drug added to the catalogue."), "success")
    return redirect(url, code=303)


@catalogue_bp.route("/drugs/<int:drug_id>/edit", methods=["GET", "POST"])
@hub_roles_required(*KEEPERS)
def edit_drug(drug_id: int):
    drug = get_visible_or_404(Drug.visible_to(current_user), drug_id, "drug")
    form = forms.DrugForm(hub_id=current_user.organisation_id, drug=drug)
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("consultations/drugs/edit.html", status=status, form=form, drug=drug)
    try:
        drug.change(current_user._get_current_object(), form.drug_data(), form.revision.data)
    except TransitionError as error:
        # What they saved is shown beside what this user typed, which stays in the form.
        flash(error.message, "error")
        form.revision.data = drug.revision
        return render("consultations/drugs/edit.html", status=409, form=form, drug=drug, saved=True)
    flash(_("Drug changed."), "success")
    return redirect(url_for("catalogue.drugs", _anchor=f"drug-{drug.id}"), code=303)


# ---- phrases ------------------------------------------------------------------------------
@catalogue_bp.route("/phrases")
@hub_roles_required(PHARMACIST)
def phrases():
    kind = request.args.get("kind", "")
    kind = kind if kind in PHRASE_KINDS else ""
    state = request.args.get("state", "")
    state = state if state in PHRASE_STATES or state == "all" else ""
    q = _query()
    rows = list(Phrase.library(current_user, kind=kind, state=state, query=q))
    return render(
        "consultations/phrases/index.html", "consultations/phrases/_rows.html", phrases=rows,
        kind=kind, state=state, q=q, kinds=PHRASE_KINDS, states=PHRASE_STATES,
    )  # fmt: skip


@catalogue_bp.route("/phrases/pick")
@hub_roles_required(PHARMACIST)
def pick_phrase():
    """The approved phrases of one kind (English, Traditional, Simplified side by side) as
    choices of a form field: the answer form's picker, one small request per pick."""
    kind = request.args.get("kind", "")
    if kind not in PHRASE_KINDS:
        kind = ""
    q = _query()
    choices = list(Phrase.pick(current_user, kind, q, PICK_LIMIT)) if kind else []
    return fragment(
        "consultations/phrases/_pick.html", choices=choices, kind=kind, q=q,
        name=_field_name(kind or "phrase"), selected=parse_id(request.args.get("selected", "")),
        kinds=PHRASE_KINDS,
    )  # fmt: skip


@catalogue_bp.route("/phrases/new", methods=["GET", "POST"])
@hub_roles_required(PHARMACIST)
def new_phrase():
    form = forms.PhraseForm()
    if request.method == "POST" and (
        earlier := SubmissionKey.result_of(form.submission_key.data, current_user.id)
    ):
        return redirect(earlier, code=303)
    if request.method == "GET" and request.args.get("kind") in PHRASE_KINDS:
        form.kind.data = request.args["kind"]
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("consultations/phrases/new.html", status=status, form=form)
    user = current_user._get_current_object()

    def create() -> str:
        phrase = Phrase.write(user, form.kind.data, **form.texts())
        return url_for("catalogue.phrase", phrase_id=phrase.id)

    url = SubmissionKey.once(form.submission_key.data, user, create)
    flash(_("Phrase written: a second pharmacist approves it before it can be used."), "success")
    return redirect(url, code=303)


def _phrase_or_404(phrase_id: int) -> Phrase:
    """The version with its lineage's versions (`.version_list`), of the user's hub."""
    found = Phrase.with_versions(current_user, phrase_id)
    if found is None:
        deny("phrase", phrase_id)
    return found


def _phrase_page(phrase: Phrase, form=None, status: int = 200):
    user = current_user._get_current_object()
    if form is None and phrase.revisable():
        form = forms.RevisionForm(formdata=None, phrase=phrase)
    return render(
        "consultations/phrases/show.html", status=status, phrase=phrase, form=form,
        approval_refusal=phrase.approval_refusal(user) if phrase.state == DRAFT else None,
    )  # fmt: skip


@catalogue_bp.route("/phrases/<int:phrase_id>")
@hub_roles_required(PHARMACIST)
def phrase(phrase_id: int):
    return _phrase_page(_phrase_or_404(phrase_id))


@catalogue_bp.route("/phrases/<int:phrase_id>/approve", methods=["POST"])
@hub_roles_required(PHARMACIST)
def approve_phrase(phrase_id: int):
    phrase = _phrase_or_404(phrase_id)
    try:
        phrase.approve(current_user._get_current_object())
    except TransitionError as error:
        flash(error.message, "error")
        return _phrase_page(_phrase_or_404(phrase_id), status=409)
    flash(_("Phrase approved: it can be used in answers now."), "success")
    return redirect(url_for("catalogue.phrase", phrase_id=phrase.id), code=303)


@catalogue_bp.route("/phrases/<int:phrase_id>/revise", methods=["POST"])
@hub_roles_required(PHARMACIST)
def revise_phrase(phrase_id: int):
    phrase = _phrase_or_404(phrase_id)
    form = forms.RevisionForm(phrase=phrase)
    if not form.validate_on_submit():
        return _phrase_page(phrase, form=form, status=422)
    try:
        revised = phrase.revise(current_user._get_current_object(), **form.texts())
    except TransitionError as error:
        flash(error.message, "error")
        return _phrase_page(_phrase_or_404(phrase_id), form=form, status=409)
    flash(
        _("New version written: the approved one stays in use until a second pharmacist "
          "approves this one."),
        "success",
    )  # fmt: skip
    return redirect(url_for("catalogue.phrase", phrase_id=revised.id), code=303)
