"""Drug consultations: the pharmacist queue, asking, one consultation, its moves, the answer,
the past-answers library, the patient sheet and the FHIR export."""

from flask import Blueprint, Flask, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.consultations import forms
from clinic.domains import Domain, nav_counts, register
from clinic.fhir import fhir_response
from clinic.htmx import fragment, not_modified, render, trigger, wants_fragment
from clinic.i18n import bilingual
from clinic.inputs import arg_id
from clinic.models import DOCTOR, NURSE, PHARMACIST, Patient, SubmissionKey
from clinic.models.consultations import (
    BUTTON_MOVES,
    CONSULTATION_STATES,
    PHRASE_PARTS,
    QUESTION_TYPES,
    URGENCIES,
    Consultation,
)
from clinic.models.drugs import Drug, catalogue_hubs
from clinic.moving import make_move
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l
from clinic.workflow import TransitionError

bp = Blueprint("consultations", __name__, url_prefix="/consultations")
ROLES = (DOCTOR, NURSE, PHARMACIST)
ASKERS = (DOCTOR, NURSE)
LIST_SIZE = 50
INLINE_MOVES = ("claim", "release")  # made from a row of the queue (the others: on the page)

RECORD_TYPES = {"consultation": _l("Drug question")}
AUDIT_LABELS = {
    ("consultation", "ask"): _l("Drug question asked"),
    ("consultation", "claim"): _l("Drug question claimed"),
    ("consultation", "release"): _l("Drug question released"),
    ("consultation", "request_info"): _l("Pharmacist asked the clinic"),
    ("consultation", "give_info"): _l("Clinic answered the pharmacist"),
    ("consultation", "answer"): _l("Drug question answered"),
    ("consultation", "answer_for_check"): _l("Drug answer written, for a second check"),
    ("consultation", "second_check"): _l("Drug answer checked"),
    ("consultation", "send_back"): _l("Drug answer sent back for changes"),
    ("consultation", "acknowledge"): _l("Drug answer acknowledged"),
    ("consultation", "cancel"): _l("Drug question cancelled"),
    ("consultation", "stop_for_consent"): _l("Drug question stopped: consent withdrawn"),
    ("consultation", "advise_referral"): _l("Referral advised by the pharmacist"),
    ("consultation", "view"): _l("Drug question viewed"),
    ("consultation", "list"): _l("Drug questions listed"),
    ("consultation", "print"): _l("Patient sheet printed"),
    ("consultation", "export_fhir"): _l("Drug question exported (FHIR)"),
    ("consultation", "library"): _l("Past answers searched"),
}


def init_consultations(app: Flask) -> None:
    app.register_blueprint(bp)
    register(
        app,
        Domain(
            name="consultations",
            nav_template="consultations/_nav.html",
            nav_count=nav_count,
            today=today_section,
            today_template="consultations/_today.html",
            today_patients=lambda context: [
                c.patient_id for c in context["consultations_today"] if c.patient_id
            ],
            patient_template="consultations/_patient.html",
            hub_patient_ids=Consultation.patient_ids_visible_to,
            record_types=RECORD_TYPES,
            audit_labels=AUDIT_LABELS,
            consent_withdrawn=Consultation.stop_all_for_consent,
            patient_records=Consultation.records_of,
        ),
    )


@bp.app_context_processor
def consultation_helpers():
    return {
        "consultation_states": CONSULTATION_STATES,
        "consultation_urgencies": URGENCIES,
        "consultation_types": QUESTION_TYPES,
        "inline_moves": INLINE_MOVES,
    }


def nav_count(user):
    """What waits on the user's organisation: the hub's queue, the clinic's answers to read."""
    return Consultation.awaiting(user) if user.has_role(*ROLES) else None


def today_section(user) -> dict:
    """The pharmacist's Today is the queue, overdue first. A clinic's Today (whose check-in
    queue always shows) loads its open and answered questions as a fragment of their own,
    so the page's cost stays fixed."""
    if user.has_role(*ASKERS) and user.organisation.is_clinic:
        return {"consultations_today": [], "consultations_lazy": True}
    if not user.has_role(PHARMACIST):
        return {}
    rows = Consultation.for_today(user)
    return {"consultations_today": rows} if rows else {}


@bp.route("/today")
@roles_required(*ASKERS)
def today():
    """The clinic's open and answered-to-acknowledge questions, for its Today page."""
    rows = Consultation.for_today(current_user)
    shown = sorted({c.patient_id for c in rows if c.patient_id})
    if shown:
        audit("list", "patient", None, "today consultations: " + ",".join(map(str, shown)))
    return fragment("consultations/_today.html", consultations_today=rows)


def _load(consultation_id) -> Consultation:
    """The consultation if the user's clinic asked it or it is addressed to their hub (need to
    know); 404 (audited) otherwise."""
    query = Consultation.joined(Consultation.visible_to(current_user))
    return get_visible_or_404(query, consultation_id, "consultation")


def _user():
    return current_user._get_current_object()


def _buttons(consultation: Consultation) -> list:
    return [m for m in consultation.moves_for(current_user) if m.name in BUTTON_MOVES]


# ---- the queue ----------------------------------------------------------------------------
def _filters() -> dict:
    args = request.args
    hub = current_user.organisation.is_hub
    default = "open" if hub else "all"
    state = args.get("state", default)
    return {
        "state": state if state in (*CONSULTATION_STATES, "open", "all") else default,
        "urgency": args.get("urgency", "") if args.get("urgency") in URGENCIES else "",
        "clinic": arg_id("clinic") if hub else None,
        "question_type": args.get("type", "") if args.get("type") in QUESTION_TYPES else "",
    }


@bp.route("/")
@roles_required(*ROLES)
def index():
    filters = _filters()
    query = Consultation.listing(current_user, **filters)
    if response := not_modified(lambda: Consultation.fingerprint(query)):
        return response
    rows, version = Consultation.page_with_fingerprint(query, LIST_SIZE)
    audit("list", "consultation", None, ",".join(str(c.id) for c in rows[:LIST_SIZE]))
    organisation = current_user.organisation
    return render(
        "consultations/index.html", "consultations/_rows.html",
        consultations=rows[:LIST_SIZE], more=len(rows) > LIST_SIZE, filters=filters,
        version=version, clinics=organisation.clinics() if organisation.is_hub else [],
        awaiting=nav_counts().get("consultations", 0),
        poll_seconds=current_app.config["REFERRAL_POLL_SECONDS"],
    )  # fmt: skip


# ---- asking -------------------------------------------------------------------------------
@bp.route("/new", methods=["GET", "POST"])
@roles_required(*ASKERS)
def new():
    patient = None
    if patient_id := request.values.get("patient"):
        patient = get_visible_or_404(_clinic_patients(), patient_id, "patient")
    form = forms.AskForm(hubs=list(current_user.organisation.hubs()))
    if request.method == "GET" and patient is not None:
        audit("view", "patient", patient.id, "drug question form")
        form.medications.data = patient.medications
        form.allergies.data = patient.allergies
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("consultations/new.html", status=status, form=form, patient=patient)
    drug = _catalogue_drug(form)
    if form.confirm.data != "1":
        form.confirm.data = "1"
        similar = Consultation.similar(
            current_user, form.drug_text.data, drug.id if drug else None, form.question_type.data
        )
        return render(
            "consultations/new.html", form=form, patient=patient, similar=similar, drug=drug,
            reviewing=True,
        )  # fmt: skip
    user = _user()

    def ask() -> str:
        about = patient if (patient is not None and form.patient_specific.data) else None
        consultation = Consultation.ask(
            user, form.chosen_hub, about, drug=drug, patient_specific=about is not None,
            **form.question_fields(),
        )  # fmt: skip
        return url_for("consultations.show", consultation_id=consultation.id)

    try:
        url = SubmissionKey.once(form.submission_key.data, user, ask)
    except TransitionError as error:
        flash(error.message, "error")
        return render("consultations/new.html", status=422, form=form, patient=patient)
    flash(_("Question sent to the hub pharmacists."), "success")
    trigger("counts-changed")
    return redirect(url, code=303)


def _catalogue_drug(form) -> Drug | None:
    """The catalogue entry picked, or the one the typed name is exactly; None: free text."""
    if (form.drug_id.data or "").isdigit():
        found = _catalogue().where(Drug.id == int(form.drug_id.data)).first()
        if found:
            return found
    typed = form.drug_text.data.casefold()
    for candidate in Drug.search(form.drug_text.data, limit=5, user=current_user):
        if typed in {name.casefold() for name in _all_names(candidate)}:
            return candidate
    return None


def _catalogue():
    """The active drugs of the catalogues of the user's hubs."""
    return Drug.select().where(Drug.active, Drug.hub.in_(catalogue_hubs(current_user)))


def _all_names(drug: Drug) -> list[str]:
    return [drug.generic_name, drug.name_hant, drug.name_hans, *drug.brands]


def _clinic_patients():
    return Patient.select().where(Patient.clinic == current_user.organisation_id)


@bp.route("/new/drugs")
@roles_required(*ASKERS)
def drugs():
    """As you type the drug: catalogue matches to pick; a match picked (`pick`): the drug
    fields filled from it (its names, where registered, 港澳藥械通)."""
    if request.args.get("pick"):
        return _drug_fields(arg_id("pick"))
    typed = (request.args.get("drug_text") or "").strip()[:200]
    matches = list(Drug.search(typed, limit=8, user=current_user)) if typed else []
    return fragment("consultations/_drug_matches.html", matches=matches, typed=typed)


def _drug_fields(drug_id: int | None):
    drug = _catalogue().where(Drug.id == (drug_id or 0)).first() or abort(404)
    form = forms.AskForm(formdata=None, hubs=[])
    form.drug_text.data, form.drug_id.data = drug.generic_name, str(drug.id)
    if drug.hk_registered and drug.mainland_marketed:
        form.where_registered.data = "both"
    elif drug.hk_registered:
        form.where_registered.data = "hk"
    elif drug.mainland_marketed:
        form.where_registered.data = "mainland"
    form.gba_listed.data = drug.gba_listed
    return fragment("consultations/_drug_fields.html", form=form, drug=drug)


# ---- one consultation ---------------------------------------------------------------------
def _version(consultation: Consultation) -> str:
    return f"{consultation.state}-{consultation.updated_at.timestamp()}"


def _detail(consultation: Consultation) -> dict:
    answered = consultation.answered_at is not None
    clinic_side = current_user.organisation_id == consultation.clinic_id
    shown = answered and (not clinic_side or consultation.clinic_may_read_answer)
    return {
        "c": consultation,
        "moves": _buttons(consultation),
        "events": list(consultation.timeline()),
        "lines": consultation.guidance() if shown else [],
        "references": consultation.references() if shown else [],
        "answer_shown": shown,
        "may_answer": _may_answer(consultation),
        "may_advise": consultation.may_advise_referral(current_user),
        "version": _version(consultation),
        "poll_seconds": current_app.config["REFERRAL_POLL_SECONDS"],
    }


def _may_answer(consultation: Consultation) -> bool:
    return consultation.answer_move in [m.name for m in consultation.moves_for(current_user)]


@bp.route("/<int:consultation_id>")
@roles_required(*ROLES)
def show(consultation_id: int):
    consultation = _load(consultation_id)
    if response := not_modified(lambda: _version(consultation)):
        return response
    audit("view", "consultation", consultation.id)
    return render("consultations/show.html", "consultations/_detail.html", **_detail(consultation))


@bp.route("/<int:consultation_id>/row")
@roles_required(*ROLES)
def row(consultation_id: int):
    consultation = _load(consultation_id)
    audit("view", "consultation", consultation.id, "row")
    return _row(consultation)


def _row(consultation: Consultation):
    if wants_fragment():
        inline = [m for m in _buttons(consultation) if m.name in INLINE_MOVES]
        return fragment("consultations/_row.html", c=consultation, moves=inline)
    return render("consultations/show.html", **_detail(consultation))


@bp.route("/<int:consultation_id>/answer", methods=["GET", "POST"])
@roles_required(PHARMACIST)
def answer(consultation_id: int):
    """The answer: guidance lines picked from approved phrases, a note, references; signed."""
    consultation = _load(consultation_id)
    if not _may_answer(consultation):
        flash(_("This is not possible now: the question is %(state)s.",
                state=consultation.state_label), "error")  # fmt: skip
        return redirect(url_for("consultations.show", consultation_id=consultation.id), code=303)
    form = forms.AnswerForm(hub=consultation.hub_id)
    if request.method == "POST" and form.more.data in ("line", "reference"):
        form.add_blank()
        return render("consultations/answer.html", form=form, c=consultation)
    if request.method == "GET":
        audit("view", "consultation", consultation.id, "answer form")
    if request.method == "GET" or not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("consultations/answer.html", status=status, form=form, c=consultation)
    move = consultation.workflow.moves[consultation.answer_move]
    try:
        consultation.answer(_user(), **form.answer_data())
    except TransitionError as error:
        audit("move_refused", "consultation", consultation.id, f"answer: {error}")
        flash(error.message, "error")
        return render("consultations/answer.html", status=422, form=form, c=consultation)
    flash(move.done, "success")
    trigger("counts-changed")
    return redirect(url_for("consultations.show", consultation_id=consultation.id), code=303)


@bp.route("/<int:consultation_id>/advise-referral", methods=["POST"])
@roles_required(PHARMACIST)
def advise_referral(consultation_id: int):
    consultation = _load(consultation_id)
    try:
        referral = consultation.advise_referral(_user())
    except TransitionError as error:
        flash(error.message, "error")
    else:
        flash(_("A referral draft #%(id)s waits for the clinic's doctor.", id=referral.id),
              "success")  # fmt: skip
        trigger("counts-changed")
    return redirect(url_for("consultations.show", consultation_id=consultation.id), code=303)


@bp.route("/<int:consultation_id>/<slug>", methods=["GET", "POST"])
@roles_required(*ROLES)
def move(consultation_id: int, slug: str):
    """One move: its form (GET), then the move (POST). From the queue (htmx) the row comes
    back updated; otherwise the move redirects to the consultation (303)."""
    consultation = _load(consultation_id)
    chosen = consultation.workflow.by_slug(slug)
    if chosen is None or chosen.name not in BUTTON_MOVES:
        abort(404)
    form = forms.MOVE_FORMS.get(chosen.name, forms.Form)()
    if request.method == "GET" or not form.validate_on_submit():
        if chosen not in consultation.moves_for(current_user):
            flash(_("This is not possible now: the question is %(state)s.",
                    state=consultation.state_label), "error")  # fmt: skip
            return _after_move(consultation)
        audit("view", "consultation", consultation.id, f"{chosen.name} form")
        status = 422 if request.method == "POST" else 200
        return render("consultations/move.html", status=status, move=chosen, form=form,
                      c=consultation)  # fmt: skip
    data = form.move_data()
    if chosen.name == "give_info":
        data = {"answer": data["answer"]}
    make_move(consultation, chosen, data)
    return _after_move(consultation)


def _after_move(consultation: Consultation):
    if wants_fragment():
        return _row(consultation)
    return redirect(url_for("consultations.show", consultation_id=consultation.id), code=303)


# ---- the past-answers library -------------------------------------------------------------
@bp.route("/library")
@roles_required(*ROLES)
def library():
    """Answered questions of the alliance: question, answer, references; no patient."""
    drug = (request.args.get("drug") or "").strip()[:100]
    kind = request.args.get("type", "") if request.args.get("type") in QUESTION_TYPES else ""
    entries = Consultation.library(current_user, drug, kind) if (drug or kind) else []
    if not (drug or kind):
        entries = Consultation.library(current_user, limit=10)
    audit("library", "consultation", None, ",".join(str(e.id) for e in entries))
    lines = _library_lines(entries)
    return render(
        "consultations/library.html", "consultations/_library_rows.html",
        entries=entries, lines=lines, drug=drug, kind=kind,
    )  # fmt: skip


def _library_lines(entries) -> dict:
    """The guidance lines of these answers, in one statement, by consultation."""
    from clinic.models.consultations import GuidanceLine

    if not entries:
        return {}
    found = {}
    query = GuidanceLine.with_phrases().where(
        GuidanceLine.consultation.in_([e.id for e in entries])
    )
    for line in query:
        found.setdefault(line.consultation_id, []).append(line)
    return found


# ---- the patient page's section -----------------------------------------------------------
@bp.route("/patient/<int:patient_id>")
@roles_required(*ROLES)
def for_patient(patient_id: int):
    patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    rows = Consultation.for_patient(current_user, patient)
    audit("list", "consultation", None, f"patient {patient.id}")
    return render(
        "consultations/patient.html", "consultations/_patient_rows.html",
        patient=patient, consultations=rows,
    )  # fmt: skip


# ---- the patient sheet and FHIR -----------------------------------------------------------
SHEET_LABELS = {
    "sheet": _l("Medication advice"),
    "drug": _l("Drug"),
    "guidance": _l("How to take it"),
    "note": _l("Pharmacist's note"),
    "pharmacist": _l("Pharmacist"),
    "checked_by": _l("Checked by"),
    "hub": _l("Hub hospital"),
    "contact": _l("Contact"),
    "patient": _l("Patient"),
    "date": _l("Date"),
    "question": _l("Question"),
}


@bp.route("/<int:consultation_id>/sheet")
@roles_required(*ROLES)
def sheet(consultation_id: int):
    """The patient's sheet: the guidance in their language with English beside it."""
    consultation = _load(consultation_id)
    if not consultation.clinic_may_read_answer:
        abort(404)
    audit("print", "consultation", consultation.id, "patient sheet")
    patient = consultation.patient
    preferred = patient.preferred_language if patient else "zh_Hant_HK"
    locale = "zh_Hans_CN" if preferred == "zh_Hans_CN" else "zh_Hant_HK"
    return render(
        "consultations/sheet.html", c=consultation, lines=consultation.guidance(), zh=locale,
        labels=bilingual(SHEET_LABELS, locale), drug_names=_drug_names(consultation, locale),
    )  # fmt: skip


def _drug_names(consultation: Consultation, locale: str) -> tuple[str, str]:
    if consultation.drug_id:
        drug = consultation.drug
        return drug.generic_name, drug.name_in(locale) or drug.generic_name
    return consultation.drug_text, consultation.drug_text


@bp.route("/<int:consultation_id>/fhir")
@roles_required(*ROLES)
def fhir(consultation_id: int):
    from clinic.consultations.fhir import bundle

    consultation = _load(consultation_id)
    audit("export_fhir", "consultation", consultation.id)
    return fhir_response(bundle(consultation), f"consultation-{consultation.id}.json")


__all__ = ["PHRASE_PARTS", "bp", "init_consultations"]
