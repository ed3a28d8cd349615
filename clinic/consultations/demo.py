"""Demo drug consultations: questions from the first clinic in each state of the workflow,
answered ones with guidance lines of the hub's approved phrases (when the demo loaded some)."""

from clinic.models import Organisation, Patient, Phrase, Referral, User
from clinic.models.consultations import Consultation

QUESTIONS = (
    # (drug, question type, urgency, details, how far it goes)
    (
        "Metformin 二甲雙胍",
        "availability",
        "routine",
        "Patient moved from Shenzhen; is the same brand available in Hong Kong?",
        "open",
    ),
    (
        "Amlodipine",
        "equivalent",
        "same_day",
        "Mainland brand 络活喜 5 mg: what is the Hong Kong equivalent?",
        "claimed",
    ),
    (
        "Warfarin 華法林",
        "interaction",
        "immediate",
        "Started on clarithromycin yesterday; INR due next week. Any interaction?",
        "info_requested",
    ),
    (
        "Atorvastatin",
        "dosing",
        "routine",
        "Elderly patient, eGFR 40: what dose of atorvastatin is appropriate?",
        "answered",
    ),
    (
        "Paracetamol 撲熱息痛",
        "border",
        "routine",
        "Can the patient carry 100 tablets across the border for personal use?",
        "acknowledged",
    ),
)


def load(clinic_name: str, nurse_email: str, pharmacist_email: str, count: int = 5) -> None:
    clinic = Organisation.by_name(clinic_name)
    hub = clinic.hubs().first()
    nurse = User.get(User.email == nurse_email)
    pharmacist = User.get(User.email == pharmacist_email)
    # Patients the hub knows of through no referral: its pharmacists see them only through
    # these questions (need to know).
    referred = Referral.select(Referral.patient)
    patients = list(
        Patient.select()
        .where(Patient.clinic == clinic, Patient.id.not_in(referred))
        .order_by(Patient.id)
        .limit(5)
    )
    phrases = {}
    for phrase in Phrase.usable(hub=hub.id):
        phrases.setdefault(phrase.kind, phrase.id)
    for n, (drug, kind, urgency, details, goal) in enumerate(QUESTIONS[-count:]):
        patient = patients[n % len(patients)] if patients else None
        c = Consultation.ask(
            nurse, hub, patient, drug_text=drug, question_type=kind, urgency=urgency,
            details=details, patient_specific=patient is not None,
            medications=patient.medications if patient else None,
            allergies=patient.allergies if patient else None,
        )  # fmt: skip
        if goal == "open":
            continue
        c.claim(pharmacist)
        if goal == "info_requested":
            c.request_info(pharmacist, "Which clarithromycin dose, and for how long?")
            continue
        if goal == "claimed":
            continue
        line = {part: phrases.get(part) for part in ("dose", "frequency", "timing", "duration")}
        lines = [dict(line, drug_text=drug.split()[0])] if phrases else []
        c.answer(
            pharmacist, lines, "Checked against the product information; see the references.",
            [{"title": "British National Formulary", "source": "BNF 86", "link": ""}],
        )  # fmt: skip
        if c.state == "checking":
            others = User.select().where(User.organisation == hub, User.id != pharmacist.id)
            checker = others.where(User.role == "pharmacist").first()
            if checker is None:
                continue
            c.second_check(checker)
        if goal == "acknowledged":
            c.acknowledge(nurse)
