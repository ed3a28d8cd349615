"""FHIR R4 export of a referral: a Bundle with Patient, ServiceRequest, Task (BSeR pattern).

Each resource is built as R4 JSON and passed through `fhirclient`'s R4 (4.0.1) models in strict
mode, so a wrong type or a missing required element fails here, not in the hub's HIS.
"""

import uuid

from fhirclient.models.bundle import Bundle
from flask import current_app, url_for

from clinic.models.referrals import (
    ACCEPTED,
    CANCELLED,
    CLOSED,
    COMPLETED,
    DECLINED,
    DRAFT,
    INFO_REQUESTED,
    NO_SHOW,
    STATES,
    SUBMITTED,
    Referral,
)

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
LANGUAGE_EXT = "http://hl7.org/fhir/StructureDefinition/language"

TASK_STATUS = {
    DRAFT: "draft",
    SUBMITTED: "requested",
    INFO_REQUESTED: "on-hold",
    ACCEPTED: "accepted",
    DECLINED: "rejected",
    CANCELLED: "cancelled",
    NO_SHOW: "failed",
    COMPLETED: "completed",
    CLOSED: "completed",
}
REQUEST_STATUS = {
    DRAFT: "draft",
    SUBMITTED: "active",
    INFO_REQUESTED: "on-hold",
    ACCEPTED: "active",
    DECLINED: "revoked",
    CANCELLED: "revoked",
    NO_SHOW: "revoked",
    COMPLETED: "completed",
    CLOSED: "completed",
}
PRIORITY = {"routine": "routine", "urgent": "urgent", "green": "asap"}
GENDER = {"F": "female", "M": "male", "X": "unknown"}
# Identifier type: v2-0203 code, or a local code for documents v2 has no code for.
DOCUMENT_TYPES = {
    "hkid": (V2_0203, "NNHKG", "Hong Kong Identity Card"),
    "mo_id": (V2_0203, "NNMAC", "Macao Resident Identity Card"),
    "cn_id": (V2_0203, "NNCHN", "Mainland Resident Identity Card / residence permit"),
    "passport": (V2_0203, "PPN", "Passport number"),
    "home_return": (None, "HRP", "Mainland Travel Permit for HK/Macao residents"),
    "exit_entry": (None, "EEP", "Exit-Entry Permit for travelling to HK/Macao"),
}


def _base() -> str:
    return current_app.config.get("FHIR_BASE", "https://fhir.clinic-alliance.example")


def _uuid(kind: str, key) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{_base()}/{kind}/{key}')}"


def _identifier(document) -> dict:
    system, code, text = DOCUMENT_TYPES[document.kind]
    system = system or f"{_base()}/CodeSystem/identifier-type"
    number_system = f"{_base()}/sid/{document.kind}"
    if document.kind == "passport" and document.country:
        number_system += f"/{document.country.lower()}"
    value = document.identity_key if document.kind == "home_return" else document.number
    return {
        "use": "official",
        "type": {"coding": [{"system": system, "code": code, "display": text}], "text": text},
        "system": number_system,
        "value": value,
    }


def _names(patient) -> list[dict]:
    names = []
    if patient.chinese_name:
        script = "zh-Hans-CN" if patient.preferred_language == "zh_Hans_CN" else "zh-Hant-HK"
        names.append(
            {
                "use": "official",
                "text": patient.chinese_name,
                "extension": [{"url": LANGUAGE_EXT, "valueCode": script}],
            }
        )
    if patient.english_name:
        family, _, given = patient.english_name.partition(",")
        name = {
            "use": "official",
            "text": patient.english_name,
            "family": family.strip(),
            "extension": [{"url": LANGUAGE_EXT, "valueCode": "en"}],
        }
        if given.strip():
            name["given"] = given.split()
        names.append(name)
    return names


def _patient(patient) -> dict:
    identifiers = [_identifier(d) for d in patient.documents]
    identifiers.append(
        {
            "use": "usual",
            "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
            "system": f"{_base()}/sid/mrn/{patient.clinic_id}",
            "value": str(patient.id),
        }
    )
    resource = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": _names(patient),
        "gender": GENDER.get(patient.sex, "unknown"),
        "birthDate": patient.date_of_birth.isoformat(),
        "managingOrganization": {"reference": _uuid("Organization", patient.clinic_id)},
    }
    if patient.phone:
        resource["telecom"] = [{"system": "phone", "value": patient.phone}]
    return resource


def _organisation(organisation) -> dict:
    resource = {
        "resourceType": "Organization",
        "identifier": [{"system": f"{_base()}/sid/organisation", "value": str(organisation.id)}],
        "name": organisation.name,
        "type": [{"text": "hub hospital" if organisation.is_hub else "community clinic"}],
    }
    aliases = [n for n in (organisation.name_zh_hant, organisation.name_zh_hans) if n]
    if aliases:
        resource["alias"] = list(dict.fromkeys(aliases))
    return resource


def _instant(value) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


def _service_request(referral: Referral) -> dict:
    reasons = []
    if referral.working_diagnosis or referral.icd10:
        concept = {"text": referral.working_diagnosis or referral.icd10}
        if referral.icd10:
            concept["coding"] = [{"system": ICD10, "code": referral.icd10}]
        reasons.append(concept)
    reasons.append({"text": referral.reason})
    resource = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": f"{_base()}/sid/referral", "value": str(referral.id)}],
        "status": REQUEST_STATUS[referral.state],
        "intent": "order",
        "priority": PRIORITY[referral.priority],
        "category": [
            {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
        ],
        "subject": {"reference": _uuid("Patient", referral.patient_id)},
        "authoredOn": _instant(referral.submitted_at or referral.created_at),
        "requester": {
            "reference": _uuid("Organization", referral.from_org_id),
            "display": referral.created_by.name,
        },
        "performer": [{"reference": _uuid("Organization", referral.to_org_id)}],
        "reasonCode": reasons,
    }
    if referral.service_id:
        resource["code"] = {
            "coding": [
                {"system": f"{_base()}/CodeSystem/hub-service", "code": referral.service.code}
            ],
            "text": referral.service.name,
        }
    notes = [referral.clinical_summary, referral.results]
    if any(notes):
        resource["note"] = [{"text": n} for n in notes if n]
    if referral.appointment_at:
        resource["occurrenceDateTime"] = _instant(referral.appointment_at)
    return resource


def _task(referral: Referral, has_summary: bool) -> dict:
    owner = referral.owner_id or referral.to_org_id
    task = {
        "resourceType": "Task",
        "identifier": [{"system": f"{_base()}/sid/referral-task", "value": str(referral.id)}],
        "status": TASK_STATUS[referral.state],
        "businessStatus": {
            "coding": [{"system": f"{_base()}/CodeSystem/referral-state", "code": referral.state}],
            "text": str(STATES[referral.state]),
        },
        "intent": "order",
        "priority": PRIORITY[referral.priority],
        "focus": {"reference": _uuid("ServiceRequest", referral.id)},
        "for": {"reference": _uuid("Patient", referral.patient_id)},
        "authoredOn": _instant(referral.created_at),
        "lastModified": _instant(referral.updated_at),
        "requester": {"reference": _uuid("Organization", referral.from_org_id)},
        "owner": {"reference": _uuid("Organization", owner)},
    }
    if referral.due_by:
        task["restriction"] = {"period": {"end": _instant(referral.due_by)}}
    reason = referral.decline_reason or referral.cancel_reason or referral.question
    if reason and referral.state in (DECLINED, CANCELLED, INFO_REQUESTED):
        task["statusReason"] = {"text": reason}
    if has_summary:
        task["output"] = [
            {
                "type": {"text": "Back-referral summary"},
                "valueReference": {"reference": _uuid("Composition", referral.id)},
            }
        ]
    return task


def _summary(referral: Referral) -> dict:
    sections = [
        ("Diagnosis", referral.br_diagnosis),
        ("Treatment", referral.br_treatment),
        ("Medication changes", referral.br_medication_changes),
        ("Follow-up plan", referral.br_follow_up_plan),
    ]
    if referral.br_follow_up_due:
        sections.append(("Follow-up due date", referral.br_follow_up_due.isoformat()))
    return {
        "resourceType": "Composition",
        "status": "final",
        "type": {
            "coding": [{"system": "http://loinc.org", "code": "11488-4"}],
            "text": "Consult note",
        },
        "subject": {"reference": _uuid("Patient", referral.patient_id)},
        "date": _instant(referral.br_signed_at),
        "author": [{"display": referral.br_signed_by.name}],
        "title": "Back-referral summary",
        "section": [
            {
                "title": title,
                "text": {"status": "generated", "div": _div(text)},
            }
            for title, text in sections
            if text
        ],
    }


def _div(text: str) -> str:
    from markupsafe import escape

    return f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(text)}</div>'


def bundle(referral: Referral) -> dict:
    """The referral as a FHIR R4 collection Bundle, validated by fhirclient (strict)."""
    has_summary = bool(referral.br_signed_at)
    resources = [
        ("Patient", referral.patient_id, _patient(referral.patient)),
        ("Organization", referral.from_org_id, _organisation(referral.from_org)),
        ("Organization", referral.to_org_id, _organisation(referral.to_org)),
        ("ServiceRequest", referral.id, _service_request(referral)),
        ("Task", referral.id, _task(referral, has_summary)),
    ]
    if has_summary:
        resources.append(("Composition", referral.id, _summary(referral)))
    data = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(referral.updated_at),
        "identifier": {
            "system": f"{_base()}/sid/referral-bundle",
            "value": url_for("referrals.fhir", referral_id=referral.id),
        },
        "entry": [
            {"fullUrl": _uuid(kind, key), "resource": resource} for kind, key, resource in resources
        ],
    }
    return Bundle(data, strict=True).as_json()
