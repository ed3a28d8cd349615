"""Registration, search, the patient page, consents and the same-day check-in queue."""

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from peewee import IntegrityError

from clinic import domains
from clinic.auth.access import audit, deny, get_visible_or_404, roles_required
from clinic.db import compiled_rows, write_transaction
from clinic.domains import consent_withdrawn, patient_sections
from clinic.forms import SearchForm
from clinic.htmx import not_modified, render, wants_fragment
from clinic.i18n import local_today as clinic_today
from clinic.inputs import arg_id
from clinic.models import (
    ADMIN,
    DOCTOR,
    NURSE,
    VISIT_STATES,
    AuditEvent,
    Consent,
    IdentityDocument,
    Organisation,
    Patient,
    SubmissionKey,
    Visit,
)
from clinic.patients.forms import ConsentForm, PatientForm
from clinic.patients.identity import format_phone
from clinic.translation import gettext as _
from clinic.workflow import TransitionError

bp = Blueprint("patients", __name__, url_prefix="/patients")
bp.add_app_template_filter(format_phone, "phone")
CLINIC_STAFF = (DOCTOR, NURSE)


def _clinic_id() -> int:
    return current_user.organisation_id


# Search -----
@bp.route("/", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def index():
    query = SearchForm().terms
    results = Patient.search(_clinic_id(), query) if query else []
    if query:
        # Who looked whom up: the ids shown, never the typed text (it may be a name or number).
        shown = ",".join(str(p.id) for p in results)
        audit("patients_searched", "patient", None, f"{len(results)} shown: {shown}"[:500])
    return render(
        "patients/index.html",
        "patients/_results.html",
        q=query,
        results=results,
        documents=IdentityDocument.by_patient([p.id for p in results]),
    )


# Registration -----
@bp.route("/new", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def register():
    form = PatientForm(clinic_id=_clinic_id())
    if request.method == "POST" and form.add_document.data:
        form.grow()
        return render("patients/register.html", "patients/_documents.html", form=form)
    valid = form.validate_on_submit() and form.check_duplicates()
    # Sent again (a double click): its documents now exist, so answer with the first result.
    # Asked after the checks, as its twin may have committed while they ran.
    if earlier := SubmissionKey.result_of(form.submission_key.data, current_user.id):
        return redirect(earlier, code=303)
    if not valid:
        status = 422 if request.method == "POST" else 200
        return render("patients/register.html", form=form, status=status)
    try:
        url = SubmissionKey.once(form.submission_key.data, current_user.id, lambda: _register(form))
    except IntegrityError:
        # Another desk registered the same document a moment ago: the database said no.
        form.validate()
        return render("patients/register.html", form=form, status=422)
    flash(_("Patient registered."), "success")
    return redirect(url, code=303)


def _register(form: PatientForm) -> str:
    with write_transaction():  # the record and its audit row commit together, or neither
        patient = Patient.register(
            _clinic_id(), current_user.id, form.patient_fields(), form.parsed_documents,
            form.consents(),
        )  # fmt: skip
        audit("patient_registered", "patient", patient.id)
    return url_for("patients.show", patient_id=patient.id)


@bp.route("/validate/<name>", methods=["POST"])
@bp.route("/<int:patient_id>/validate/<name>", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def validate_field(name: str, patient_id: int | None = None):
    """One field checked on blur: the whole form is validated, only this field comes back."""
    patient = None
    if patient_id is not None:
        patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    form = PatientForm(clinic_id=_clinic_id(), patient=patient)
    form.validate()
    field = _find_field(form, name)
    if field is None:
        abort(404)
    # A name or the date of birth changed: the look-alike warning is refreshed too (out of band).
    check_duplicates = name in ("chinese_name", "english_name", "date_of_birth")
    if check_duplicates and not (form.date_of_birth.errors or form.english_name.errors):
        form.check_duplicates()
    return render(
        "patients/_field.html",
        "patients/_field.html",
        form=form,
        f=field,
        check_duplicates=check_duplicates,
    )


def _find_field(form: PatientForm, name: str):
    if name.startswith("documents-"):
        for entry in form.documents.entries:
            for sub in entry.form:
                if sub.name == name:
                    return sub
        return None
    field = form._fields.get(name)
    return field if name in Patient.EDITABLE else None


# The patient page -----
@bp.route("/<int:patient_id>")
@login_required
def show(patient_id: int):
    user = current_user
    patient = Patient.for_page(
        Patient.visible_to(user), patient_id, clinic_today(), user.reader_key
    )
    if patient is None:
        deny("patient", patient_id)
    audit("patient_viewed", "patient", patient.id)
    return render(
        "patients/show.html",
        patient=patient,
        sections=patient_sections(),
        documents=patient.document_list,
        consents=compiled_rows(("consents",), patient.consent_history, patient=patient.id),
        consent_form=ConsentForm(),
        visit=patient.open_visit,
        today=clinic_today(),
    )


# The access report -----
def _report_readable():
    """The patients whose report this user might open (other organisations': 404)."""
    if current_user.has_role(ADMIN):
        governed = Organisation.governed_by(current_user).select(Organisation.id)
        return Patient.select().where(Patient.clinic.in_(governed))
    return Patient.visible_to(current_user)


@bp.route("/<int:patient_id>/access")
@login_required
def access_report(patient_id: int):
    """Every read and change of this patient's record across the alliance: who, where, when.

    For the patient's own clinic doctor and the administrators (a privacy officer's question).
    """
    patient = get_visible_or_404(_report_readable(), patient_id, "patient")
    if not current_user.has_role(DOCTOR, ADMIN):
        audit("forbidden", "page", request.path)
        abort(403)
    audit("access_report", "patient", patient.id)
    records = {"patient": [patient.id]} | domains.patient_records(patient)
    events = AuditEvent.about(records, _searches_showing(patient))
    return render("patients/access_report.html", patient=patient, events=list(events))


def _searches_showing(patient: Patient):
    """The clinic's searches whose results listed this patient (see `index`: "N shown: ids")."""
    detail, key = AuditEvent.detail, str(patient.id)
    listed = (
        detail.endswith(f": {key}")
        | detail.contains(f": {key},")
        | detail.contains(f",{key},")
        | detail.endswith(f",{key}")
    )
    searched = (AuditEvent.action == "patients_searched") & (
        AuditEvent.organisation == patient.clinic_id
    )
    return searched & listed


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def edit(patient_id: int):
    patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    data = None
    if request.method == "GET":
        audit("patient_viewed", "patient", patient.id, "edit form")
        data = PatientForm.data_from(patient)
    form = PatientForm(clinic_id=_clinic_id(), patient=patient, data=data)
    if request.method == "POST" and form.add_document.data:
        form.grow()
        return render("patients/edit.html", "patients/_documents.html", form=form, patient=patient)
    if not form.validate_on_submit() or not form.check_duplicates():
        status = 422 if request.method == "POST" else 200
        return render("patients/edit.html", form=form, patient=patient, status=status)
    try:
        with write_transaction():
            patient.change(form.patient_fields(), form.parsed_documents)
            audit("patient_updated", "patient", patient.id)
    except IntegrityError:
        form.validate()
        return render("patients/edit.html", form=form, patient=patient, status=422)
    flash(_("Changes saved."), "success")
    return redirect(url_for("patients.show", patient_id=patient.id), code=303)


# Consents -----
@bp.route("/<int:patient_id>/consents", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def record_consent(patient_id: int):
    patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    form = ConsentForm()
    if form.validate_on_submit():
        with write_transaction():
            consent = Consent.create(
                patient=patient,
                scope=form.scope.data,
                note=(form.note.data or "").strip() or None,
                recorded_by=current_user.id,
            )
            detail = f"consent {consent.id} {consent.scope}"
            audit("consent_recorded", "patient", patient.id, detail)
        flash(_("Consent recorded."), "success")
    else:
        flash(_("The consent was not recorded: %(errors)s", errors=_errors(form)), "error")
    return redirect(url_for("patients.show", patient_id=patient.id) + "#consents", code=303)


@bp.route("/<int:patient_id>/consents/<int:consent_id>/withdraw", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def withdraw_consent(patient_id: int, consent_id: int):
    patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    consent = get_visible_or_404(patient.consents, consent_id, "consent")
    user = current_user._get_current_object()
    with write_transaction():
        withdrawn = consent.withdraw(user)
        stopped = consent_withdrawn(user, consent) if withdrawn else []
        if withdrawn:
            audit("consent_withdrawn", "patient", patient.id, f"consent {consent.id}")
    if stopped:
        flash(_("Consent withdrawn. Stopped what relied on it: %(n)s.", n=len(stopped)), "success")
    elif withdrawn:
        flash(_("Consent withdrawn."), "success")
    else:
        flash(_("This consent had already been withdrawn."), "warning")
    return redirect(url_for("patients.show", patient_id=patient.id) + "#consents", code=303)


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# The same-day queue -----
def queue_context() -> dict:
    """What the queue fragment needs; also shown on Today for clinic staff."""
    day, clinic = clinic_today(), _clinic_id()
    visits = compiled_rows(("queue", clinic, day), lambda: Visit.queue(clinic, day))
    return {
        "visits": visits,
        "queue_version": Visit.version_of(visits),
        "today": day,
        "visit_states": VISIT_STATES,
    }


def today_section(user) -> dict:
    """Today's page: the check-in queue for clinic staff, nothing for others."""
    if user.has_role(*CLINIC_STAFF) and user.organisation.is_clinic:
        return queue_context()
    return {}


@bp.route("/queue")
@roles_required(*CLINIC_STAFF)
def queue():
    # A poll: answer without a body when nothing changed (htmx does not swap a 204).
    if response := not_modified(lambda: Visit.queue_version(_clinic_id(), clinic_today())):
        return response
    return _queue("patients/queue.html")


def _queue(page: str):
    """The queue (page or fragment), its read audited with the patients it shows."""
    context = queue_context()
    shown = ",".join(str(visit.patient_id) for visit in context["visits"])
    audit("list", "patient", None, f"queue: {shown}")
    return render(page, "patients/_queue.html", **context)


@bp.route("/<int:patient_id>/check-in", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def check_in(patient_id: int):
    patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    key = request.form.get("submission_key")
    SubmissionKey.once(key, current_user.id, lambda: _check_in(patient))
    return redirect(url_for("patients.queue"), code=303)


def _check_in(patient: Patient) -> str:
    with write_transaction():  # the visit and its audit row commit together, or neither
        visit, created = Visit.check_in(patient, current_user.id, clinic_today())
        if created:
            audit("patient_checked_in", "patient", patient.id, f"visit {visit.id}")
    if created:
        flash(_("%(name)s is checked in.", name=patient.display_name), "success")
    else:
        flash(_("%(name)s is already in today's queue.", name=patient.display_name), "info")
    return url_for("patients.queue")


@bp.route("/visits/<int:visit_id>/<slug>", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def move_visit(visit_id: int, slug: str):
    visible = Visit.select().where(Visit.clinic == _clinic_id())
    visit = get_visible_or_404(visible, visit_id, "visit")
    chosen = visit.workflow.by_slug(slug)
    seen = arg_id("version")
    if chosen is None or seen is None:
        abort(400)
    if seen == visit.version and chosen not in visit.moves_for(current_user):
        abort(400)  # not a move from this state (a stale page gets the conflict message below)
    try:
        visit.move(current_user._get_current_object(), chosen.name, seen)
    except TransitionError as error:
        flash(error.message, "warning")
    else:
        flash(chosen.done, "success")  # announced (role=status): the row alone says nothing
    if wants_fragment():
        return _queue("patients/_queue.html")
    return redirect(url_for("patients.queue"), code=303)
