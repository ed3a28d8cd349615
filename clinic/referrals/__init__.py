"""Two-way referral: clinic → hub hospital → back-referral, and hub → clinic."""

from flask import Flask
from flask_babel import lazy_gettext as _l

from clinic.domains import Domain, register

AUDIT_LABELS = {
    ("referral", "submit"): _l("Referral submitted"),
    ("referral", "accept"): _l("Referral accepted"),
    ("referral", "accept_down"): _l("Down-referral accepted"),
    ("referral", "decline"): _l("Referral declined"),
    ("referral", "request_info"): _l("Information requested"),
    ("referral", "answer"): _l("Information given"),
    ("referral", "cancel"): _l("Referral cancelled"),
    ("referral", "no_show"): _l("No-show recorded"),
    ("referral", "back_referral"): _l("Back-referral written"),
    ("referral", "acknowledge"): _l("Back-referral acknowledged"),
    ("referral", "stop_for_consent"): _l("Referral stopped: consent withdrawn"),
    ("patient", "register_from_down_referral"): _l("Registered from a down-referral"),
    ("patient", "medications_applied"): _l("Medication changes from a back-referral applied"),
}


def init_app(app: Flask) -> None:
    from clinic.models.referrals import Referral
    from clinic.referrals.views import bp, nav_count, today_section

    app.register_blueprint(bp)
    register(
        app,
        Domain(
            name="referrals",
            nav_template="referrals/_nav.html",
            nav_count=nav_count,
            today=today_section,
            today_template="referrals/_today.html",
            patient_template="referrals/_patient_referrals.html",
            today_patients=lambda context: [r.patient_id for r in context["waiting_referrals"]],
            hub_patient_ids=Referral.patient_ids_visible_to,
            audit_labels=AUDIT_LABELS,
            consent_withdrawn=Referral.stop_all_for_consent,
            patient_records=Referral.records_of,
        ),
    )
