"""Demo referrals: the hub's services and a handful of referrals in different states."""

import datetime as dt

from clinic.db import utcnow
from clinic.models import Consent, IdentityDocument, Organisation, Patient, User
from clinic.models.referrals import DOWN, GREEN, ROUTINE, URGENT, HubService, Referral

SERVICES = (
    ("hkmrc", "HK & Macao Residents Health Service Centre", "港澳居民健康服務中心",
     "港澳居民健康服务中心", False),
    ("cardiology", "Cardiology", "心臟科", "心脏科", False),
    ("orthopaedics", "Orthopaedics", "骨科", "骨科", False),
    ("imaging", "Imaging", "影像科", "影像科", False),
    ("crossborder", "Cross-border Cooperation Centre", "跨境合作中心", "跨境合作中心", True),
)  # fmt: skip


def load_services(hub: Organisation) -> None:
    for code, name, hant, hans, cross_border in SERVICES:
        HubService.get_or_create(
            hub=hub,
            code=code,
            defaults={
                "name": name,
                "name_zh_hant": hant,
                "name_zh_hans": hans,
                "cross_border": cross_border,
            },
        )


def _patients(clinic: Organisation, doctor: User) -> list[Patient]:
    """The clinic's demo patients (made by the patients demo), or a few of our own."""
    found = list(Patient.select().where(Patient.clinic == clinic).order_by(Patient.id).limit(4))
    if len(found) >= 4:
        return found
    people = (
        ("陳大文", "CHAN, Tai Man", "M", dt.date(1958, 3, 2), "hk", "hkid", "A1234563"),
        ("李美華", "LEE, Mei Wah", "F", dt.date(1949, 11, 20), "hk", "hkid", "E3649125"),
        ("何志明", "HO, Chi Ming", "M", dt.date(1971, 7, 8), "macao", "mo_id", "51234567"),
        ("张伟", "ZHANG, Wei", "M", dt.date(1985, 1, 15), "mainland", "exit_entry", "C12345678"),
    )
    for chinese, english, sex, born, residency, kind, number in people[len(found) :]:
        if IdentityDocument.get_or_none(
            IdentityDocument.clinic == clinic, IdentityDocument.identity_key == number
        ):
            continue
        patient = Patient.create(
            clinic=clinic, chinese_name=chinese, english_name=english, sex=sex,
            date_of_birth=born, residency=residency, created_by=doctor,
            preferred_language="zh_Hans_CN" if residency == "mainland" else "zh_Hant_HK",
            medications="Amlodipine 5 mg daily\nMetformin 500 mg twice daily",
            allergies="Penicillin (rash)",
        )  # fmt: skip
        IdentityDocument.create(
            patient=patient, clinic=clinic, kind=kind, number=number, identity_key=number
        )
        found.append(patient)
    return found


def load(hub_name: str, clinic_name: str, doctor_email: str, coordinator_email: str,
         specialist_email: str) -> None:  # fmt: skip
    hub = Organisation.by_name(hub_name)
    clinic = Organisation.by_name(clinic_name)
    load_services(hub)
    doctor = User.get(User.email == doctor_email)
    coordinator = User.get(User.email == coordinator_email)
    specialist = User.get(User.email == specialist_email)
    services = {s.code: s for s in HubService.select().where(HubService.hub == hub)}
    patients = _patients(clinic, doctor)
    if len(patients) < 4:
        return

    def draft(patient, service, priority, reason, **extra):
        return Referral.create_draft(
            doctor, patient, to_org=hub, service=services[service], priority=priority,
            reason=reason, medications=patient.medications, allergies=patient.allergies,
            direct_billing=patient.direct_billing, **extra,
        )  # fmt: skip

    first, second, third, fourth = patients[:4]
    draft(first, "cardiology", URGENT, "Exertional chest pain for 3 weeks; ECG: ST depression.",
          working_diagnosis="Stable angina", icd10="I20.8").submit(doctor)  # fmt: skip
    asked = draft(second, "orthopaedics", ROUTINE, "Right knee pain, worse on stairs.",
                  working_diagnosis="Osteoarthritis of knee", icd10="M17.1")  # fmt: skip
    asked.submit(doctor)
    asked.request_info(coordinator, "Please attach the latest knee X-ray report.")
    accepted = draft(third, "imaging", GREEN, "Suspected DVT, left calf swelling since yesterday.")
    accepted.submit(doctor)
    accepted.accept(coordinator, utcnow() + dt.timedelta(hours=3), "Imaging, Block B, 2/F",
                    "Bring ID document and medication list.", transport_arranged=False)  # fmt: skip
    done = draft(fourth, "hkmrc", ROUTINE, "Diabetes review; HbA1c 8.9%.",
                 working_diagnosis="Type 2 diabetes mellitus", icd10="E11.9")  # fmt: skip
    done.submit(doctor)
    done.accept(coordinator, utcnow() - dt.timedelta(days=1), "HK & Macao Centre, 1/F")
    done.back_referral(
        specialist, br_diagnosis="Type 2 diabetes, suboptimal control",
        br_treatment="Education; diet review.", br_medication_changes="Metformin to 1 g bd.",
        br_follow_up_plan="HbA1c in 3 months at the clinic.",
        br_follow_up_due=dt.date.today() + dt.timedelta(days=90),
    )  # fmt: skip
    # A down-referral from the hub to the clinic, waiting for the clinic to accept.
    consent = Referral.active_consent(first) or Consent.create(
        patient=first, scope="cross_border", recorded_by=doctor, note="Demo"
    )
    down = Referral.create_draft(
        specialist, first, direction=DOWN, to_org=clinic, priority=ROUTINE, consent=consent,
        reason="Discharged after angiography; community follow-up of blood pressure and lipids.",
        medications="Aspirin 80 mg daily\nAtorvastatin 40 mg nightly",
    )  # fmt: skip
    down.submit(specialist)
