"""Two-way referral: the clinic outbox and hub inbox, one referral, its moves, letters, FHIR."""

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.db import write_transaction
from clinic.domains import nav_counts
from clinic.htmx import not_modified, render, trigger, wants_fragment
from clinic.i18n import bilingual
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
)
from clinic.models.referrals import (
    DOWN,
    MOBILITY,
    PRIORITIES,
    STATES,
    UP,
    HubService,
    Referral,
    TransitionError,
)
from clinic.referrals import forms

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
    return list(
        Referral.joined(Referral.visible_to(current_user))
        .where(Referral.patient == patient)
        .order_by(Referral.created_at.desc())
        .limit(20)
    )


def nav_count(user):
    """Referrals waiting on the user's organisation (the navigation badge)."""
    return Referral.awaiting(user) if user.has_role(*REFERRAL_ROLES) else None


def today_section(user) -> dict:
    """Today's page: the referrals waiting on this user's organisation, overdue first."""
    if not user.has_role(*REFERRAL_ROLES):
        return {}
    waiting = list(Referral.listing(user, needs=True).limit(10))
    return {"waiting_referrals": waiting} if waiting else {}


def _load(referral_id) -> Referral:
    """The referral (with what its pages show) if the user's organisation sent or received it;
    404 (audited) otherwise."""
    return get_visible_or_404(
        Referral.joined(Referral.visible_to(current_user)), referral_id, "referral"
    )


def _filters() -> dict:
    args = request.args
    return {
        "state": args.get("state", "") if args.get("state") in STATES else "",
        "priority": args.get("priority", "") if args.get("priority") in PRIORITIES else "",
        "service": args.get("service", ""),
        "org": args.get("org", ""),
        "needs": args.get("needs", "") == "1",
    }


@bp.route("/")
@roles_required(*REFERRAL_ROLES)
def index():
    filters = _filters()
    query = Referral.listing(current_user, **filters)
    version = Referral.fingerprint(query)
    if response := not_modified(version):
        return response
    organisation = current_user.organisation
    hub = organisation.is_hub
    audit("list", "referral", None, "inbox" if hub else "outbox")
    page = max(request.args.get("page", 1, type=int), 1)
    rows = list(query.limit(LIST_SIZE + 1).offset((page - 1) * LIST_SIZE))
    return render(
        "referrals/index.html",
        "referrals/_rows.html",
        referrals=rows[:LIST_SIZE],
        page=page,
        more=len(rows) > LIST_SIZE,
        filters=filters,
        version=version,
        services=HubService.for_hubs([organisation] if hub else organisation.hubs()),
        partners=organisation.clinics() if hub else organisation.hubs(),
        awaiting=nav_counts().get("referrals", 0),
        poll_seconds=current_app.config["REFERRAL_POLL_SECONDS"],
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(DOCTOR)
def new():
    patient_id = request.values.get("patient", "")
    if not patient_id:
        return _choose_patient()
    patient = get_visible_or_404(_clinic_patients(), patient_id, "patient")
    audit("view", "patient", patient.id, "referral form")
    consent = Referral.active_consent(patient)
    hubs = list(current_user.organisation.hubs())
    form = forms.ReferralForm(hubs=hubs, consent=consent)
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
    hubs = list(current_user.organisation.hubs())
    form = forms.ReferralForm(obj=referral, hubs=hubs, consent=consent)
    if request.method == "GET":
        form.service.data = referral.service_id
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render(
            "referrals/new.html", "referrals/_form.html", status=status,
            form=form, patient=patient, consent=consent, referral=referral,
        )  # fmt: skip
    return _save(form, patient, consent, referral)


def _save(form, patient: Patient, consent, referral: Referral | None = None):
    """Create (or update) the draft from the form, then submit it if asked."""
    service = form.chosen_service
    fields = {
        name: form[name].data or None
        for name in (
            "reason", "clinical_summary", "working_diagnosis", "icd10", "results",
            "medications", "allergies", "mobility", "pickup_notes",
        )
    }  # fmt: skip
    user = current_user._get_current_object()
    try:
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
            if request.form.get("send") == "submit":
                referral.submit(user)
    except TransitionError as error:
        flash(error.message, "error")
        return render(
            "referrals/new.html", "referrals/_form.html", status=422,
            form=form, patient=patient, consent=consent, referral=referral,
        )  # fmt: skip
    sent = referral.state != "draft"
    flash(_("Referral submitted.") if sent else _("Referral saved as a draft."), "success")
    trigger("counts-changed")
    return redirect(url_for("referrals.show", referral_id=referral.id), code=303)


@bp.route("/new/consent")
@roles_required(DOCTOR)
def consent():
    """The consent part of the referral form for the chosen service (htmx, on change)."""
    patient = get_visible_or_404(_clinic_patients(), request.args.get("patient", ""), "patient")
    form = forms.ReferralForm(
        formdata=None, hubs=list(current_user.organisation.hubs()),
        consent=Referral.active_consent(patient),
    )  # fmt: skip
    form.service.data = request.args.get("service", type=int)
    return render(
        "referrals/_consent.html", "referrals/_consent.html",
        form=form, patient=patient, consent=form.consent,
    )  # fmt: skip


def _clinic_patients():
    """The register of the doctor's own clinic (only clinic doctors write up-referrals)."""
    return Patient.select().where(Patient.clinic == current_user.organisation_id)


def _choose_patient():
    query = request.args.get("q", "").strip()[:60]
    if query:
        patients = Patient.search(current_user.organisation_id, query)
    else:
        patients = list(_clinic_patients().order_by(Patient.id.desc()).limit(20))
    audit("list", "patient", None, "referral: choose patient")
    return render("referrals/choose_patient.html", patients=patients, q=query)


def _detail(referral: Referral) -> dict:
    return {
        "referral": referral,
        "moves": referral.moves_for(current_user),
        "events": list(referral.timeline()),
        "documents": list(referral.patient.documents),
        "version": f"{referral.state}-{referral.updated_at.timestamp()}",
        "poll_seconds": current_app.config["REFERRAL_POLL_SECONDS"],
    }


@bp.route("/<int:referral_id>")
@roles_required(*REFERRAL_ROLES)
def show(referral_id: int):
    referral = _load(referral_id)
    if response := not_modified(f"{referral.state}-{referral.updated_at.timestamp()}"):
        return response
    audit("view", "referral", referral.id)
    return render("referrals/show.html", "referrals/_detail.html", **_detail(referral))


@bp.route("/<int:referral_id>/row")
@roles_required(*REFERRAL_ROLES)
def row(referral_id: int):
    referral = _load(referral_id)
    audit("view", "referral", referral.id, "row")
    return _row(referral)


def _row(referral: Referral, **context):
    """The referral's row of a list (htmx), or its page."""
    return render("referrals/show.html", "referrals/_row.html", **_detail(referral), **context)


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
            move=chosen, form=form, **_detail(referral),
        )  # fmt: skip
    user = current_user._get_current_object()
    try:
        getattr(referral, chosen.name)(user, **form.move_data())
    except TransitionError as error:
        audit("move_refused", "referral", referral.id, f"{chosen.name}: {error}")
        flash(error.message, "error")
    else:
        flash(chosen.done, "success")
        trigger("counts-changed")
    return _after_move(referral)


def _after_move(referral: Referral):
    if wants_fragment():
        return _row(referral)
    return redirect(url_for("referrals.show", referral_id=referral.id), code=303)


@bp.route("/<int:referral_id>/down", methods=["GET", "POST"])
@roles_required(SPECIALIST)
def down(referral_id: int):
    """A down-referral to a community clinic, for the patient of a referral the hub received."""
    source = _load(referral_id)
    if source.to_org_id != current_user.organisation_id or source.direction != UP:
        abort(404)
    clinics = list(current_user.organisation.clinics())
    form = forms.DownReferralForm(clinics=clinics)
    if request.method == "GET":
        form.clinic.data = source.from_org_id
        form.medications.data = source.medications
        form.allergies.data = source.allergies
        form.working_diagnosis.data = source.br_diagnosis or source.working_diagnosis
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("referrals/down.html", status=status, form=form, source=source)
    user = current_user._get_current_object()
    with write_transaction():
        referral = Referral.create_draft(
            user, source.patient, direction=DOWN, parent=source,
            to_org=Organisation.get_by_id(form.clinic.data), priority=form.priority.data,
            reason=form.reason.data, clinical_summary=form.clinical_summary.data or None,
            working_diagnosis=form.working_diagnosis.data or None,
            medications=form.medications.data or None, allergies=form.allergies.data or None,
            consent=source.consent,
        )  # fmt: skip
        referral.submit(user)
        audit("create", "referral", referral.id, "down-referral")
    flash(_("Down-referral sent to %(clinic)s.", clinic=referral.to_org.label()), "success")
    trigger("counts-changed")
    return redirect(url_for("referrals.show", referral_id=referral.id), code=303)


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
    response = current_app.response_class(
        current_app.json.dumps(bundle(referral)), mimetype="application/fhir+json"
    )
    response.headers["Content-Disposition"] = f'inline; filename="referral-{referral.id}.json"'
    return response
