"""Two-way referral: the clinic outbox and hub inbox, one referral, its moves, letters, FHIR."""

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import format_date
from flask_login import current_user

from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.db import Given, compiled_rows, write_transaction
from clinic.domains import nav_counts
from clinic.fhir import fhir_response
from clinic.forms import SearchForm
from clinic.htmx import not_modified, render, trigger, wants_fragment
from clinic.i18n import bilingual, local_today
from clinic.inputs import arg_id, arg_page, parse_id
from clinic.models import (
    COORDINATOR,
    DOCTOR,
    DOCUMENT_KINDS,
    NURSE,
    SEXES,
    SPECIALIST,
    Consent,
    Organisation,
    Patient,
    SubmissionKey,
)
from clinic.models.referrals import (
    MOBILITY,
    PRIORITIES,
    STATES,
    UP,
    HubService,
    Referral,
    TransitionError,
)
from clinic.moving import make_move
from clinic.referrals import forms
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

bp = Blueprint("referrals", __name__, url_prefix="/referrals")
REFERRAL_ROLES = (DOCTOR, NURSE, COORDINATOR, SPECIALIST)
LIST_SIZE = 60  # keeps the list within the page-weight budget; filters narrow it


@bp.app_context_processor
def referral_helpers():
    return {
        "referral_states": STATES,
        "referral_priorities": PRIORITIES,
        "referral_mobility": MOBILITY,
        "referral_document_kinds": DOCUMENT_KINDS,
        "patient_referrals": _patient_referrals,
        "patient_name": patient_name,
    }


def patient_name(patient) -> str:
    return (
        " ".join(n for n in (patient.chinese_name, patient.english_name) if n) or f"#{patient.id}"
    )


def _patient_referrals(patient):
    def query():
        return (
            Referral.for_rows(Referral.visible_to(current_user))
            .where(Referral.patient == Given("patient", patient.id))
            .order_by(Referral.created_at.desc())
            .limit(20)
        )

    key = ("patient referrals", current_user.organisation_id)  # visible_to is built from it
    return compiled_rows(key, query, patient=patient.id)


def nav_count(user):
    """Referrals waiting on the user's organisation (the navigation badge)."""
    return Referral.awaiting(user) if user.has_role(*REFERRAL_ROLES) else None


def today_section(user) -> dict:
    """Today's page: the referrals waiting on this user's organisation, overdue first."""
    if not user.has_role(*REFERRAL_ROLES):
        return {}
    waiting, follow_ups = Referral.worklist_for_today(user, local_today())
    if not (waiting or follow_ups):
        return {}
    return {"waiting_referrals": waiting, "follow_ups": follow_ups}


def _load(referral_id) -> Referral:
    """The referral (with what its pages show) if the user's organisation sent or received it;
    404 (audited) otherwise."""
    return get_visible_or_404(
        Referral.joined(Referral.visible_to(current_user)), referral_id, "referral"
    )


def _load_readable(referral_id) -> Referral:
    """As `_load`, and also a referral this organisation now reads only as stopped for
    consent (`Referral.redacted_for`: its page and row show no patient data)."""
    return get_visible_or_404(
        Referral.joined(Referral.readable_by(current_user)), referral_id, "referral"
    )


def _stopped(referral: Referral, fragment: str = "referrals/_stopped.html"):
    """A referral stopped for consent, as its other party sees it: the state and the reason."""
    audit("view", "referral", referral.id, "stopped for consent: redacted")
    return render("referrals/stopped.html", fragment, referral=referral)


VIEWS = ("open", "all")


def _default_view() -> str:
    return "open" if current_user.organisation.is_hub else "all"


def _filters() -> dict:
    args = request.args
    return {
        # The hub triages: its inbox opens on the open referrals (closed, declined: a filter).
        "state": args["state"] if args.get("state") in (*STATES, *VIEWS) else _default_view(),
        "priority": args.get("priority", "") if args.get("priority") in PRIORITIES else "",
        "service": arg_id("service"),
        "org": arg_id("org"),
        "needs": args.get("needs", "") == "1",
    }


@bp.route("/")
@roles_required(*REFERRAL_ROLES)
def index():
    filters, page = _filters(), arg_page()
    worklist = Referral.listing(current_user, **filters)
    # What the listing is built from: the reader's organisation and the filters.
    key = ("referrals", current_user.organisation_id, *filters.items())
    if response := not_modified(lambda: worklist.version(page, LIST_SIZE, key)):
        return response
    organisation = current_user.organisation
    hub = organisation.is_hub
    rows, version = worklist.page(page, LIST_SIZE, key)
    shown = ",".join(str(r.id) for r in rows[:LIST_SIZE])
    audit("list", "referral", None, f"{'inbox' if hub else 'outbox'}: {shown}")
    return render(
        "referrals/index.html",
        "referrals/_rows.html",
        referrals=rows[:LIST_SIZE],
        page=page,
        more=len(rows) > LIST_SIZE,
        filters=filters,
        version=version,
        **({} if wants_fragment() else _filter_choices(organisation)),  # the page's filters
        awaiting=nav_counts().get("referrals", 0),
        poll_seconds=current_app.config["REFERRAL_POLL_SECONDS"],
    )


def _filter_choices(organisation) -> dict:
    """The services and partner organisations a list can be filtered by (statements kept per
    organisation: they are built from it alone)."""
    hub = organisation.is_hub
    key = (organisation.id, hub)
    services = compiled_rows(("filter services", *key), lambda: HubService.for_hubs(
        [organisation] if hub else organisation.hubs()))  # fmt: skip
    partners = compiled_rows(("filter partners", *key), lambda: organisation.clinics() if hub
                             else organisation.hubs())  # fmt: skip
    return {"services": services, "partners": partners}


@bp.route("/new", methods=["GET", "POST"])
@roles_required(DOCTOR)
def new():
    patient_id = request.values.get("patient", "")
    if not patient_id:
        return _choose_patient()
    patient = get_visible_or_404(_clinic_patients(), patient_id, "patient")
    audit("view", "patient", patient.id, "referral form")
    consent = Referral.active_consent(patient)
    form = forms.ReferralForm(hubs=current_user.organisation.hubs(), consent=consent)
    if request.method == "GET":
        form.medications.data = patient.medications
        form.allergies.data = patient.allergies
        form.direct_billing.data = patient.direct_billing
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render(
            "referrals/new.html",
            "referrals/_form.html",
            status=status,
            form=form,
            patient=patient,
            consent=consent,
        )
    return _save(form, patient, consent)


@bp.route("/<int:referral_id>/edit", methods=["GET", "POST"])
@roles_required(DOCTOR)
def edit(referral_id: int):
    """A draft, changed before it is sent."""
    referral = _load(referral_id)
    if referral.workflow.moves["submit"] not in referral.moves_for(current_user):
        flash(_("This is not possible now: the referral is %(state)s.",
                state=referral.state_label), "error")  # fmt: skip
        return redirect(url_for("referrals.show", referral_id=referral.id), code=303)
    patient = referral.patient
    consent = Referral.active_consent(patient)
    hubs = current_user.organisation.hubs()
    form = forms.ReferralForm(obj=referral, hubs=hubs, consent=consent)
    if request.method == "GET":
        audit("view", "referral", referral.id, "edit form")
        form.service.data = referral.service_id
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render(
            "referrals/new.html", "referrals/_form.html", status=status,
            form=form, patient=patient, consent=consent, referral=referral,
        )  # fmt: skip
    return _save(form, patient, consent, referral)


def _save(form, patient: Patient, consent, referral: Referral | None = None):
    """Create (or update) the draft from the form, then submit it if asked; once per key."""
    user = current_user._get_current_object()
    try:
        url = SubmissionKey.once(
            form.submission_key.data, user, lambda: _store(form, patient, consent, referral)
        )
    except TransitionError as error:
        flash(error.message, "error")
        return render(
            "referrals/new.html", "referrals/_form.html", status=422,
            form=form, patient=patient, consent=consent, referral=referral,
        )  # fmt: skip
    sent = not form.drafting
    flash(_("Referral submitted.") if sent else _("Referral saved as a draft."), "success")
    trigger("counts-changed")
    return redirect(url, code=303)


def _store(form, patient: Patient, consent, referral: Referral | None) -> str:
    service = form.chosen_service
    fields = {
        name: form[name].data or None
        for name in (
            "reason", "clinical_summary", "working_diagnosis", "icd10", "results",
            "medications", "allergies", "mobility", "pickup_notes",
        )
    }  # fmt: skip
    fields["reason"] = fields["reason"] or ""  # a draft may not have one yet
    user = current_user._get_current_object()
    with write_transaction():
        if form.consent_given.data and not consent:
            consent = Consent.create(
                patient=patient,
                scope="cross_border",
                recorded_by=user.id,
                note=_("Recorded with a referral"),
            )
            audit("consent_recorded", "patient", patient.id, "cross_border")
        fields |= {
            "to_org": service.hub_id,
            "service": service,
            "priority": form.priority.data,
            "direct_billing": form.direct_billing.data,
            "transport_needed": form.transport_needed.data,
            "escort": form.escort.data,
            "consent": consent if service.cross_border else None,
        }
        if referral is None:
            referral = Referral.create_draft(
                user, patient, direction=UP, insurer=patient.insurer, **fields
            )
            audit("create", "referral", referral.id)
        else:
            referral.update_draft(user, **fields)
            audit("edit", "referral", referral.id)
        if not form.drafting:
            referral.submit(user)
    return url_for("referrals.show", referral_id=referral.id)


@bp.route("/new/consent")
@roles_required(DOCTOR)
def consent():
    """The consent part of the referral form for the chosen service (htmx, on change)."""
    patient = get_visible_or_404(_clinic_patients(), request.args.get("patient", ""), "patient")
    form = forms.ReferralForm(
        formdata=None, hubs=current_user.organisation.hubs(),
        consent=Referral.active_consent(patient),
    )  # fmt: skip
    form.service.data = arg_id("service")
    return render(
        "referrals/_consent.html", "referrals/_consent.html",
        form=form, patient=patient, consent=form.consent,
    )  # fmt: skip


def _clinic_patients():
    """The register of the doctor's own clinic (only clinic doctors write up-referrals)."""
    return Patient.select().where(Patient.clinic == current_user.organisation_id)


def _choose_patient():
    query = SearchForm().terms
    if query:
        patients = Patient.search(current_user.organisation_id, query)
    else:
        patients = list(_clinic_patients().order_by(Patient.id.desc()).limit(20))
    audit("list", "patient", None, "referral: choose patient")
    return render("referrals/choose_patient.html", patients=patients, q=query)


def _version(referral: Referral) -> str:
    return f"{referral.state}-{referral.updated_at.timestamp()}"


def _detail(referral: Referral) -> dict:
    return {
        "referral": referral,
        "moves": referral.moves_for(current_user),
        "refer_elsewhere": referral.can_refer_elsewhere(current_user),
        "patient_record": referral.patient_record_for(current_user),
        "apply_medications": referral.can_apply_medication_changes(current_user),
        "events": list(referral.timeline()),
        "documents": list(referral.patient.documents),
        "version": _version(referral),
        "poll_seconds": current_app.config["REFERRAL_POLL_SECONDS"],
    }


@bp.route("/<int:referral_id>")
@roles_required(*REFERRAL_ROLES)
def show(referral_id: int):
    referral = _load_readable(referral_id)
    if response := not_modified(lambda: _version(referral)):
        return response
    if referral.redacted_for(current_user):
        return _stopped(referral)
    audit("view", "referral", referral.id)
    if referral.note_decline_seen(current_user._get_current_object()):
        trigger("counts-changed")  # the decline no longer waits on this clinic
    return render("referrals/show.html", "referrals/_detail.html", **_detail(referral))


@bp.route("/<int:referral_id>/apply-medications", methods=["POST"])
@roles_required(DOCTOR)
def apply_medications(referral_id: int):
    """One click: the back-referral's medication changes go into the patient's record."""
    referral = _load(referral_id)
    source = _("back-referral #%(id)s, %(date)s", id=referral.id,
               date=format_date(referral.br_signed_at))  # fmt: skip
    # The changes ticked (their numbers); a form that offered no choice applies them all.
    offered = "offered" in request.form
    chosen = [n for n in map(parse_id, request.form.getlist("change")) if n] if offered else None
    if offered and not chosen:
        flash(_("Tick the changes to add to the patient's medication list."), "error")
        return redirect(url_for("referrals.show", referral_id=referral.id), code=303)
    user = current_user._get_current_object()
    if applied := referral.apply_medication_changes(user, source, chosen):
        detail = f"referral {referral.id}: {','.join(str(c.number) for c in applied)}"
        audit("medications_applied", "patient", referral.patient_id, detail)
        flash(_("The medication changes are in the patient's medication list."), "success")
    else:
        flash(_("Nothing to apply: the changes are already in the record."), "info")
    return redirect(url_for("referrals.show", referral_id=referral.id), code=303)


@bp.route("/<int:referral_id>/refer-elsewhere", methods=["POST"])
@roles_required(DOCTOR)
def refer_elsewhere(referral_id: int):
    """A declined referral, copied into a new draft to send to another service."""
    referral = _load(referral_id)
    try:
        draft = referral.refer_elsewhere(current_user._get_current_object())
    except TransitionError as error:
        flash(error.message, "error")
        return redirect(url_for("referrals.show", referral_id=referral.id), code=303)
    audit("create", "referral", draft.id, f"copied from declined referral {referral.id}")
    flash(_("A new draft copied from the declined referral: choose where to send it."), "success")
    return redirect(url_for("referrals.edit", referral_id=draft.id), code=303)


@bp.route("/<int:referral_id>/row")
@roles_required(*REFERRAL_ROLES)
def row(referral_id: int):
    referral = _load_readable(referral_id)
    if referral.redacted_for(current_user):
        return _stopped(referral, "referrals/_row.html")
    audit("view", "referral", referral.id, "row")
    return _row(referral)


def _row(referral: Referral):
    """The referral's row of a list (htmx), or its page (which shows more)."""
    if wants_fragment():
        return render("referrals/show.html", "referrals/_row.html", referral=referral)
    return render("referrals/show.html", **_detail(referral))


@bp.route("/<int:referral_id>/<slug>", methods=["GET", "POST"])
@roles_required(DOCTOR, COORDINATOR, SPECIALIST)
def move(referral_id: int, slug: str):
    """One move of the state machine: its form (GET), then the move itself (POST).

    Asked by htmx from a list, the form opens in the row and the row comes back updated;
    otherwise the form is a page and the move redirects to the referral (303).
    """
    referral = _load(referral_id)
    chosen = referral.workflow.by_slug(slug) or abort(404)
    form = forms.MOVE_FORMS.get(chosen.name, forms.Form)()
    if request.method == "GET" or not form.validate_on_submit():
        if chosen not in referral.moves_for(current_user):
            flash(_("This is not possible now: the referral is %(state)s.",
                    state=referral.state_label), "error")  # fmt: skip
            return _after_move(referral)
        audit("view", "referral", referral.id, f"{chosen.name} form")
        status = 422 if request.method == "POST" else 200
        return render(
            "referrals/move.html", "referrals/_row.html", status=status,
            move=chosen, form=form, referral=referral,
        )  # fmt: skip
    make_move(referral, chosen, form.move_data())
    return _after_move(referral)


def _after_move(referral: Referral):
    if wants_fragment():
        return _row(referral)
    return redirect(url_for("referrals.show", referral_id=referral.id), code=303)


@bp.route("/<int:referral_id>/down", methods=["GET", "POST"])
@roles_required(SPECIALIST)
def down(referral_id: int):
    """A down-referral to a community clinic, from a referral the hub accepted or completed."""
    source = _load(referral_id)
    if not source.may_refer_down(current_user):
        abort(404)
    clinics = list(current_user.organisation.clinics())
    form = forms.DownReferralForm(clinics=clinics, source=source)
    if request.method == "GET":
        audit("view", "referral", source.id, "down-referral form")
        form.clinic.data = source.from_org_id
        form.medications.data = source.medications
        form.allergies.data = source.allergies
        form.working_diagnosis.data = source.br_diagnosis or source.working_diagnosis
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("referrals/down.html", status=status, form=form, source=source)
    user = current_user._get_current_object()
    clinic = Organisation.get_by_id(form.clinic.data)
    try:
        url = SubmissionKey.once(
            form.submission_key.data, user, lambda: _send_down(form, source, clinic, user)
        )
    except TransitionError as error:
        flash(error.message, "error")
        return render("referrals/down.html", status=422, form=form, source=source)
    flash(_("Down-referral sent to %(clinic)s.", clinic=clinic.label()), "success")
    trigger("counts-changed")
    return redirect(url, code=303)


def _send_down(form, source: Referral, clinic: Organisation, user) -> str:
    referral = source.refer_down(
        user, clinic, consent_given=form.consent_given.data, priority=form.priority.data,
        reason=form.reason.data, clinical_summary=form.clinical_summary.data or None,
        working_diagnosis=form.working_diagnosis.data or None,
        medications=form.medications.data or None, allergies=form.allergies.data or None,
    )  # fmt: skip
    return url_for("referrals.show", referral_id=referral.id)


def _patient_script(patient: Patient) -> str:
    return "zh_Hans_CN" if patient.preferred_language == "zh_Hans_CN" else "zh_Hant_HK"


LETTER_LABELS = {
    "referral_letter": _l("Referral letter"),
    "back_referral": _l("Back-referral summary"),
    "patient": _l("Patient"),
    "chinese_name": _l("Chinese name"),
    "english_name": _l("English name"),
    "sex": _l("Sex"),
    "date_of_birth": _l("Date of birth"),
    "documents": _l("Identity documents"),
    "phone": _l("Phone"),
    "from": _l("From"),
    "to": _l("To"),
    "service": _l("Service"),
    "priority": _l("Priority"),
    "state": _l("State"),
    "reason": _l("Reason for referral"),
    "clinical_summary": _l("Clinical summary"),
    "working_diagnosis": _l("Working diagnosis"),
    "results": _l("Relevant results"),
    "medications": _l("Current medications"),
    "allergies": _l("Allergies"),
    "direct_billing": _l("Insurance direct billing"),
    "transport": _l("Cross-border transfer"),
    "escort": _l("Escort needed"),
    "consent": _l("Cross-border consent"),
    "appointment": _l("Appointment"),
    "referring_doctor": _l("Referring doctor"),
    "signature": _l("Signature"),
    "date": _l("Date"),
    "diagnosis": _l("Diagnosis"),
    "treatment": _l("Treatment"),
    "medication_changes": _l("Medication changes"),
    "follow_up_plan": _l("Follow-up plan"),
    "follow_up_due": _l("Follow-up due date"),
    "signed_by": _l("Signed by"),
    "yes": _l("Yes"),
    "no": _l("No"),
    "withdrawn": _l("Withdrawn"),
}


@bp.route("/<int:referral_id>/letter")
@roles_required(*REFERRAL_ROLES)
def letter(referral_id: int):
    referral = _load(referral_id)
    audit("print", "referral", referral.id, "letter")
    return _letter(referral, "referrals/letter.html")


@bp.route("/<int:referral_id>/back-referral-letter")
@roles_required(*REFERRAL_ROLES)
def back_referral_letter(referral_id: int):
    referral = _load(referral_id)
    if not referral.br_signed_at:
        abort(404)
    audit("print", "referral", referral.id, "back-referral")
    return _letter(referral, "referrals/back_letter.html")


def _letter(referral: Referral, template: str):
    locale = _patient_script(referral.patient)
    values = {
        "sex_value": SEXES.get(referral.patient.sex, referral.patient.sex),
        "priority_value": PRIORITIES[referral.priority],
        "state_value": STATES[referral.state],
    }
    if referral.mobility:
        values["mobility_value"] = MOBILITY[referral.mobility]
    return render(
        template,
        referral=referral,
        labels=bilingual(LETTER_LABELS | values, locale),
        documents=list(referral.patient.documents),
        zh=locale,
    )


@bp.route("/<int:referral_id>/fhir")
@roles_required(*REFERRAL_ROLES)
def fhir(referral_id: int):
    from clinic.referrals.fhir import bundle

    referral = _load(referral_id)
    audit("export_fhir", "referral", referral.id)
    return fhir_response(bundle(referral), f"referral-{referral.id}.json")
