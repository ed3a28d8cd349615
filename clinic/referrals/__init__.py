"""Two-way referral: clinic → hub hospital → back-referral, and hub → clinic."""

import re

from flask import Flask

from clinic.domains import AuditDetail, Domain, register
from clinic.translation import lazy_gettext as _l

RECORD_TYPES = {"referral": _l("Referral"), "service": _l("Hub service")}
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


def _audit_details() -> tuple:
    from clinic.models.referrals import DOWN_FLOW, STATES, UP_FLOW

    moves = {"move": {n: m.label for flow in (DOWN_FLOW, UP_FLOW) for n, m in flow.moves.items()}}
    said = {
        "referral form": _l("referral form"),
        "row": _l("its row in a list"),
        "letter": _l("referral letter"),
        "back-referral": _l("back-referral summary"),
        "down-referral": _l("down-referral"),
        "down-referral form": _l("down-referral form"),
        "referral: choose patient": _l("referral: choosing the patient"),
        "stopped for consent: redacted": _l("stopped for consent: shown without the patient"),
    }
    return (
        *(AuditDetail(re.escape(text), label) for text, label in said.items()),
        AuditDetail(r"inbox: (?P<ids>[0-9,]*)", _l("inbox: %(ids)s")),
        AuditDetail(r"outbox: (?P<ids>[0-9,]*)", _l("outbox: %(ids)s")),
        AuditDetail(r"(?P<move>\w+) form", _l("form: %(move)s"), moves),
        AuditDetail(r"(?P<move>\w+): (?P<why>.*)", _l("%(move)s: %(why)s"), moves),
        AuditDetail(r"referral (?P<id>[0-9]+)", _l("referral #%(id)s")),
        AuditDetail(
            r"referral (?P<id>[0-9]+): (?P<ids>[0-9,]+)", _l("referral #%(id)s, changes %(ids)s")
        ),
        AuditDetail(
            r"copied from declined referral (?P<id>[0-9]+)",
            _l("copied from declined referral #%(id)s"),
        ),
        # A move's row: the state it moved the referral to.
        AuditDetail(r"(?P<state>\w+)", "%(state)s", {"state": STATES}, object_type="referral"),
    )


def init_app(app: Flask) -> None:
    from clinic.models.referrals import Referral
    from clinic.referrals import services
    from clinic.referrals.views import bp, nav_count, today_section

    app.register_blueprint(bp)
    app.register_blueprint(services.bp)
    app.cli.add_command(services.create_service_command)
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
            record_types=RECORD_TYPES,
            audit_labels=AUDIT_LABELS,
            audit_details=_audit_details(),
            consent_withdrawn=Referral.stop_all_for_consent,
            patient_records=Referral.records_of,
            organisation_section=services.section,
            organisation_template="referrals/_hub_services.html",
            organisation_summary=services.summary,
        ),
    )
