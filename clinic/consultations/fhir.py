"""FHIR R4 export of a drug consultation: a Bundle with Patient, the organisations, a
CommunicationRequest (the question) and, once answered, a Communication (the answer, its
guidance lines as text in English and Chinese). Validated by fhirclient's R4 models (strict)."""

from fhirclient.models.bundle import Bundle
from flask import url_for

from clinic.models.consultations import (
    ACKNOWLEDGED,
    ANSWERED,
    CANCELLED,
    CHECKING,
    CLAIMED,
    INFO_REQUESTED,
    OPEN,
    Consultation,
)
from clinic.referrals.fhir import _base, _div, _instant, _organisation, _patient, _uuid

REQUEST_STATUS = {
    OPEN: "active", CLAIMED: "active", INFO_REQUESTED: "on-hold", CHECKING: "active",
    ANSWERED: "completed", ACKNOWLEDGED: "completed", CANCELLED: "revoked",
}  # fmt: skip
PRIORITY = {"immediate": "stat", "same_day": "urgent", "routine": "routine"}


def _question_text(c: Consultation) -> str:
    parts = [
        f"Drug: {c.drug_text}",
        f"Question type: {c.question_type}",
        f"Where registered: {c.where_registered}" + (" (GBA listed)" if c.gba_listed else ""),
        c.details,
    ]
    if c.medications:
        parts.append(f"Current medications: {c.medications}")
    if c.allergies:
        parts.append(f"Allergies: {c.allergies}")
    parts.append(f"Pregnancy/breastfeeding: {c.pregnancy}")
    if c.renal_impairment:
        parts.append("Renal impairment")
    if c.hepatic_impairment:
        parts.append("Hepatic impairment")
    return "\n".join(parts)


def _request(c: Consultation) -> dict:
    resource = {
        "resourceType": "CommunicationRequest",
        "identifier": [{"system": f"{_base()}/sid/consultation", "value": str(c.id)}],
        "status": REQUEST_STATUS[c.state],
        "category": [{"text": "drug information enquiry"}],
        "priority": PRIORITY.get(c.urgency, "routine"),
        "payload": [{"contentString": _question_text(c)}],
        "authoredOn": _instant(c.created_at),
        "requester": {"reference": _uuid("Organization", c.clinic_id), "display": c.asked_by.name},
        "recipient": [{"reference": _uuid("Organization", c.hub_id)}],
        "occurrenceDateTime": _instant(c.answer_by),
    }
    if c.patient_id:
        resource["subject"] = {"reference": _uuid("Patient", c.patient_id)}
    if c.state == CANCELLED and c.cancel_reason:
        resource["statusReason"] = {"text": c.cancel_reason}
    return resource


def _answer_text(c: Consultation, lines, locale: str) -> str:
    rows = [f"{n}. {line.text_in(locale)}" for n, line in enumerate(lines, start=1)]
    return "\n".join(rows)


def _communication(c: Consultation, lines, references) -> dict:
    payload = []
    if lines:
        payload.append({"contentString": _answer_text(c, lines, "en")})
        payload.append({"contentString": _answer_text(c, lines, "zh_Hant_HK")})
        payload.append({"contentString": _answer_text(c, lines, "zh_Hans_CN")})
    if c.answer_note:
        payload.append({"contentString": c.answer_note})
    for reference in references:
        cited = " · ".join(p for p in (reference.title, reference.source, reference.link) if p)
        payload.append({"contentString": f"Reference: {cited}"})
    resource = {
        "resourceType": "Communication",
        "identifier": [{"system": f"{_base()}/sid/consultation-answer", "value": str(c.id)}],
        "basedOn": [{"reference": _uuid("CommunicationRequest", c.id)}],
        "status": "completed" if c.state in (ANSWERED, ACKNOWLEDGED) else "in-progress",
        "category": [{"text": "drug information answer"}],
        "sent": _instant(c.checked_at or c.answered_at),
        "sender": {"reference": _uuid("Organization", c.hub_id), "display": c.answered_by.name},
        "recipient": [{"reference": _uuid("Organization", c.clinic_id)}],
        "payload": payload,
        "text": {"status": "generated", "div": _div(_joined(payload))},
    }
    if c.patient_id:
        resource["subject"] = {"reference": _uuid("Patient", c.patient_id)}
    if c.state == ACKNOWLEDGED:
        resource["received"] = _instant(c.updated_at)
    return resource


def _joined(payload: list[dict]) -> str:
    return "\n".join(part["contentString"] for part in payload)


def bundle(c: Consultation) -> dict:
    """The consultation as a FHIR R4 collection Bundle, validated by fhirclient (strict).
    The answer is in it once the clinic may read it (answered or acknowledged)."""
    resources = []
    if c.patient_id:
        resources.append(("Patient", c.patient_id, _patient(c.patient)))
    resources += [
        ("Organization", c.clinic_id, _organisation(c.clinic)),
        ("Organization", c.hub_id, _organisation(c.hub)),
        ("CommunicationRequest", c.id, _request(c)),
    ]
    if c.clinic_may_read_answer:
        resources.append(("Communication", c.id, _communication(c, c.guidance(), c.references())))
    data = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(c.updated_at),
        "identifier": {
            "system": f"{_base()}/sid/consultation-bundle",
            "value": url_for("consultations.fhir", consultation_id=c.id),
        },
        "entry": [
            {"fullUrl": _uuid(kind, key), "resource": resource} for kind, key, resource in resources
        ],
    }
    return Bundle(data, strict=True).as_json()
