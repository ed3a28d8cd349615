"""Patients: registration, identity documents, search, the patient page and the check-in queue."""

from flask import Flask
from flask_babel import lazy_gettext as _l

from clinic.domains import Domain, register

AUDIT_LABELS = {
    (None, "patient_registered"): _l("Patient registered"),
    (None, "patient_viewed"): _l("Patient record viewed"),
    ("patient", "access_report"): _l("Access report opened"),
    (None, "patient_updated"): _l("Patient record changed"),
    (None, "patients_searched"): _l("Patients searched"),
    (None, "patient_checked_in"): _l("Patient checked in"),
    (None, "consent_recorded"): _l("Consent recorded"),
    (None, "consent_withdrawn"): _l("Consent withdrawn"),
    ("patient", "call_in"): _l("Called in from the queue"),
    ("patient", "finish"): _l("Visit finished"),
    ("patient", "refer"): _l("Visit marked as referred"),
    ("patient", "leave"): _l("Visit marked as left"),
    ("patient", "back_to_waiting"): _l("Visit back to waiting (undo)"),
    ("patient", "undo_finish"): _l("Visit back with the doctor (undo)"),
}


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
        ),
    )
