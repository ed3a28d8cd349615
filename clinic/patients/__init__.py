"""Patients: registration, identity documents, search, the patient page and the check-in queue."""

from flask import Flask

from clinic.domains import AuditDetail, Domain, register
from clinic.translation import lazy_gettext as _l

AUDIT_LABELS = {
    (None, "patient_registered"): _l("Patient registered"),
    (None, "patient_viewed"): _l("Patient record viewed"),
    ("patient", "access_report"): _l("Access report opened"),
    (None, "patient_updated"): _l("Patient record changed"),
    (None, "patients_searched"): _l("Patients searched"),
    (None, "patient_checked_in"): _l("Patient checked in"),
    (None, "search_reindexed"): _l("Search keys rebuilt"),
    (None, "consent_recorded"): _l("Consent recorded"),
    (None, "consent_withdrawn"): _l("Consent withdrawn"),
    ("patient", "call_in"): _l("Called in from the queue"),
    ("patient", "finish"): _l("Visit finished"),
    ("patient", "refer"): _l("Visit marked as referred"),
    ("patient", "leave"): _l("Visit marked as left"),
    ("patient", "back_to_waiting"): _l("Visit back to waiting (undo)"),
    ("patient", "undo_finish"): _l("Visit back with the doctor (undo)"),
}


def _audit_details() -> tuple:
    from clinic.models.patients import CONSENT_SCOPES, VISIT_STATES

    scopes, states = {"scope": CONSENT_SCOPES}, {"state": VISIT_STATES}
    return (
        AuditDetail(r"(?P<n>[0-9]+) shown: (?P<ids>[0-9,]*)", _l("%(n)s shown: %(ids)s")),
        AuditDetail(r"edit form", _l("edit form")),
        AuditDetail(r"queue: (?P<ids>[0-9,]*)", _l("check-in queue: %(ids)s")),
        AuditDetail(r"visit (?P<id>[0-9]+)", _l("visit #%(id)s")),
        AuditDetail(
            r"visit (?P<id>[0-9]+) → (?P<state>\w+)", _l("visit #%(id)s → %(state)s"), states
        ),
        AuditDetail(r"consent (?P<id>[0-9]+)", _l("consent #%(id)s")),
        AuditDetail(
            r"consent (?P<id>[0-9]+) (?P<scope>\w+)", _l("consent #%(id)s: %(scope)s"), scopes
        ),
        AuditDetail(
            r"consent (?P<id>[0-9]+) (?P<scope>\w+) (?P<org>[0-9]+)",
            _l("consent #%(id)s: %(scope)s (organisation #%(org)s)"),
            scopes,
        ),
        AuditDetail(r"(?P<scope>\w+)", "%(scope)s", scopes, object_type="patient"),
    )


def init_app(app: Flask) -> None:
    from clinic.patients.views import bp, today_section

    app.register_blueprint(bp)
    register(
        app,
        Domain(
            name="patients",
            nav_template="patients/_nav.html",
            today=today_section,
            today_template="patients/_queue.html",
            today_patients=lambda context: [visit.patient_id for visit in context["visits"]],
            audit_labels=AUDIT_LABELS,
            audit_details=_audit_details(),
        ),
    )
