"""Demo register: ~30 Hong Kong, Macao and mainland residents per clinic, some in the queue.

Document numbers are generated with valid check digits (never real people's numbers).
"""

import datetime as dt
import random
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from stdnum.iso7064 import mod_11_2

from clinic.db import utcnow
from clinic.models import (
    CLINIC,
    WITH_DOCTOR,
    Consent,
    IdentityDocument,
    Organisation,
    Patient,
    User,
    Visit,
)
from clinic.patients.identity import hkid_check_digit

# Chinese name, English name, sex, residency. The script of the Chinese name follows residency.
PEOPLE = (
    ("陳大文", "CHAN, Tai Man", "M", "hk"),
    ("李美華", "LEE, Mei Wah", "F", "hk"),
    ("何志明", "HO, Chi Ming", "M", "macao"),
    ("张伟", "ZHANG, Wei", "M", "mainland"),
    ("黃秀英", "WONG, Sau Ying", "F", "hk"),
    ("梁家輝", "LEUNG, Ka Fai", "M", "hk"),
    ("林嘉欣", "LAM, Ka Yan", "F", "hk"),
    ("張國強", "CHEUNG, Kwok Keung", "M", "hk"),
    ("劉德明", "LAU, Tak Ming", "M", "hk"),
    ("吳淑芬", "NG, Shuk Fan", "F", "hk"),
    ("鄭少龍", "CHENG, Siu Lung", "M", "hk"),
    ("蔡麗珍", "CHOI, Lai Chun", "F", "hk"),
    ("周浩然", "CHOW, Ho Yin", "M", "hk"),
    ("馮曉彤", "FUNG, Hiu Tung", "F", "hk"),
    ("許志偉", "HUI, Chi Wai", "M", "hk"),
    ("羅雅琪", "LAW, Nga Ki", "F", "hk"),
    ("葉振邦", "YIP, Chun Bong", "M", "hk"),
    ("麥潔儀", "MAK, Kit Yee", "F", "hk"),
    ("區偉業", "AU, Wai Yip", "M", "hk"),
    ("梁玉蓮", "LEONG, Iok Lin", "F", "macao"),
    ("陳文傑", "CHAN, Man Kit", "M", "macao"),
    ("黃詠詩", "VONG, Weng Si", "F", "macao"),
    ("李建华", "LI, Jianhua", "M", "mainland"),
    ("王丽娟", "WANG, Lijuan", "F", "mainland"),
    ("刘洋", "LIU, Yang", "M", "mainland"),
    ("陈静", "CHEN, Jing", "F", "mainland"),
    ("杨志刚", "YANG, Zhigang", "M", "mainland"),
    ("赵敏", "ZHAO, Min", "F", "mainland"),
    ("黄晓明", "HUANG, Xiaoming", "M", "mainland"),
    ("周婷", "ZHOU, Ting", "F", "mainland"),
)
STREETS = {
    "hk": ("Flat {n}B, {f}/F, Tai Koo Shing, Hong Kong", "Flat {n}, {f}/F, Mei Foo Sun Chuen"),
    "macao": ("Rua do Campo {n}, {f}/F, Macau",),
    "mainland": ("南沙区金洲大道{n}号{f}楼", "南沙区黄阁镇麒麟路{n}号"),
}
ALLERGIES = ("", "", "", "Penicillin (rash)", "Aspirin (wheeze)", "Shellfish")
CONDITIONS = (
    "",
    "Hypertension",
    "Type 2 diabetes mellitus",
    "Hypertension\nHyperlipidaemia",
    "Asthma",
    "Osteoarthritis of knee",
)
MEDICATIONS = {
    "Hypertension": "Amlodipine 5 mg daily",
    "Type 2 diabetes mellitus": "Metformin 500 mg twice daily",
    "Hypertension\nHyperlipidaemia": "Amlodipine 5 mg daily\nAtorvastatin 20 mg nightly",
    "Asthma": "Salbutamol inhaler as needed",
    "Osteoarthritis of knee": "Paracetamol 500 mg as needed",
}
CONTACTS = (("陳美儀", "Daughter"), ("李志強", "Son"), ("黃麗華", "Wife"), ("何家明", "Husband"))
INSURERS = ("AIA", "Bupa", "Cigna", "AXA", "中国平安")


def hkid(rng: random.Random) -> str:
    letter, digits = rng.choice("ACDEGHKPRVYZ"), f"{rng.randrange(10**6):06d}"
    return letter + digits + hkid_check_digit(letter, digits)


def resident_id(rng: random.Random, born: dt.date, area: str) -> str:
    body = f"{area}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return body + mod_11_2.calc_check_digit(body)


def documents_for(rng: random.Random, residency: str, born: dt.date) -> list[tuple[str, str, str]]:
    """(kind, number, identity_key) for a plausible set of documents for this resident."""
    if residency == "hk":
        number = hkid(rng)
        documents = [("hkid", number, number)]
        if rng.random() < 0.5:
            permit = f"H{rng.randrange(10**8):08d}{rng.randrange(3):02d}"
            documents.append(("home_return", permit, permit[:9]))
        return documents
    if residency == "macao":
        number = f"{rng.choice('157')}{rng.randrange(10**7):07d}"
        permit = f"M{rng.randrange(10**8):08d}"
        return [("mo_id", number, number), ("home_return", permit, permit)]
    number = resident_id(rng, born, rng.choice(("440115", "440106", "440104")))
    documents = [("cn_id", number, number)]
    if rng.random() < 0.6:
        permit = f"C{rng.choice('ABCDEFGH')}{rng.randrange(10**7):07d}"
        documents.append(("exit_entry", permit, permit))
    return documents


def phone_for(rng: random.Random, residency: str) -> str:
    if residency == "mainland":
        return f"+86{rng.choice(('138', '139', '186', '135'))}{rng.randrange(10**8):08d}"
    if residency == "macao":
        return f"+8536{rng.randrange(10**7):07d}"
    return f"+852{rng.choice('5679')}{rng.randrange(10**7):07d}"


def load_clinic(clinic: Organisation, seed: int, today: dt.date) -> list[Patient]:
    rng = random.Random(seed)  # noqa: S311 (demo data, repeatable)
    staff = User.select().where(User.organisation == clinic).order_by(User.id)
    nurse = next((u for u in staff if u.role == "nurse"), None) or staff.first()
    patients = []
    for index, (chinese, english, sex, residency) in enumerate(PEOPLE):
        born = dt.date(rng.randint(1935, 2015), rng.randint(1, 12), rng.randint(1, 28))
        conditions = CONDITIONS[index % len(CONDITIONS)] if born.year < 1990 else ""
        insured = rng.random() < 0.35
        patient = Patient.create(
            clinic=clinic,
            created_by=nurse,
            chinese_name=chinese,
            english_name=english,
            sex=sex,
            date_of_birth=born,
            residency=residency,
            preferred_language="zh_Hans_CN" if residency == "mainland" else "zh_Hant_HK",
            phone=phone_for(rng, residency),
            address=rng.choice(STREETS[residency]).format(
                n=rng.randint(1, 40), f=rng.randint(2, 30)
            ),
            allergies=rng.choice(ALLERGIES) or None,
            conditions=conditions or None,
            medications=MEDICATIONS.get(conditions),
            insurer=rng.choice(INSURERS) if insured else None,
            policy_number=f"P{rng.randrange(10**8):08d}" if insured else None,
            direct_billing=insured and rng.random() < 0.7,
            emergency_contact_name=CONTACTS[index % len(CONTACTS)][0] if index % 3 == 0 else None,
            emergency_contact_relation=CONTACTS[index % len(CONTACTS)][1]
            if index % 3 == 0
            else None,
            emergency_contact_phone=phone_for(rng, residency) if index % 3 == 0 else None,
        )
        for kind, number, identity_key in documents_for(rng, residency, born):
            IdentityDocument.create(
                patient=patient, clinic=clinic, kind=kind, number=number, identity_key=identity_key
            )
        if residency != "hk" and nurse:
            Consent.create(patient=patient, scope="cross_border", recorded_by=nurse)
        patients.append(patient)
    # A morning's queue: four checked in over the last 40 minutes, one already with the doctor.
    now = utcnow()
    for position, patient in enumerate(patients[4:8]):
        arrived = now - dt.timedelta(minutes=40 - 11 * position)
        visit = Visit.create(
            clinic=clinic, patient=patient, day=today, checked_in_by=nurse, checked_in_at=arrived
        )
        if position == 0:
            called = arrived + dt.timedelta(minutes=12)
            Visit.update(state=WITH_DOCTOR, version=2, called_at=called).where(
                Visit.id == visit.id
            ).execute()
    return patients


def load(today: dt.date | None = None) -> None:
    """Every demo clinic's register (call inside the demo's transaction)."""
    if today is None:
        zone = current_app.config["CLINIC_TIMEZONE"] if has_app_context() else "Asia/Hong_Kong"
        today = dt.datetime.now(ZoneInfo(zone)).date()
    clinics = Organisation.select().where(Organisation.kind == CLINIC).order_by(Organisation.id)
    for seed, clinic in enumerate(clinics, start=2026):
        load_clinic(clinic, seed, today)
