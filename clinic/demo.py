"""A demo alliance: one hub hospital, two community clinics, one account per role."""

from clinic.db import db
from clinic.models import (
    ADMIN,
    CLINIC,
    COORDINATOR,
    DOCTOR,
    HUB,
    NURSE,
    PHARMACIST,
    SPECIALIST,
    Organisation,
    User,
)

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 (demo data, printed to the operator)
# Hub staff and admins sign in with a second factor; the demo's is one shared, printed key.
DEMO_TOTP_SECRET = "DEMOCLINICDEMOCLINICDEMOCLINIC22"  # noqa: S105
HUB_NAME = "Nansha Hub Hospital"
CLINIC_A = "Jinzhou Family-Doctor Clinic"
CLINIC_B = "Huangge Family-Doctor Clinic"

ACCOUNTS = (
    ("doctor@jinzhou.demo", "Dr WONG Ka Yan 黃嘉欣", DOCTOR, CLINIC_A),
    ("nurse@jinzhou.demo", "LEE Mei Ling 李美玲", NURSE, CLINIC_A),
    ("doctor@huangge.demo", "Dr CHEN Wei 陈伟", DOCTOR, CLINIC_B),
    ("nurse@huangge.demo", "ZHANG Li 张丽", NURSE, CLINIC_B),
    ("coordinator@hub.demo", "HO Siu Fong 何小芳", COORDINATOR, HUB_NAME),
    ("specialist@hub.demo", "Dr LAM Chi Keung 林志強", SPECIALIST, HUB_NAME),
    ("pharmacist@hub.demo", "NG Wing Sze 吳詠詩", PHARMACIST, HUB_NAME),
    ("pharmacist2@hub.demo", "CHEUNG Ho Yin 張浩然", PHARMACIST, HUB_NAME),
    ("admin@hub.demo", "System administrator", ADMIN, HUB_NAME),
)


CHINESE_NAMES = {
    HUB_NAME: ("南沙中心醫院", "南沙中心医院"),
    CLINIC_A: ("金洲家庭醫生診所", "金洲家庭医生诊室"),
    CLINIC_B: ("黃閣家庭醫生診所", "黄阁家庭医生诊室"),
}


def _organisation(name: str, kind: str) -> Organisation:
    traditional, simplified = CHINESE_NAMES[name]
    return Organisation.create(
        name=name, name_zh_hant=traditional, name_zh_hans=simplified, kind=kind
    )


def load() -> None:
    with db.atomic():
        hub = _organisation(HUB_NAME, HUB)
        for name in (CLINIC_A, CLINIC_B):
            _organisation(name, CLINIC).link_hub(hub)
        for email, name, role, organisation in ACCOUNTS:
            user = User.create_with_password(
                DEMO_PASSWORD,
                email=email,
                name=name,
                role=role,
                organisation=Organisation.by_name(organisation),
            )
            if user.needs_second_factor:
                User.update(totp_secret=DEMO_TOTP_SECRET).where(User.id == user.id).execute()
        from clinic.patients import demo as patients_demo

        patients_demo.load()
        from clinic.referrals import demo as referrals_demo

        referrals_demo.load(
            HUB_NAME, CLINIC_A, "doctor@jinzhou.demo", "coordinator@hub.demo", "specialist@hub.demo"
        )
        from clinic.service_days import demo as service_days_demo

        service_days_demo.load(CLINIC_A, CLINIC_B, "doctor@jinzhou.demo", "specialist@hub.demo")
        from clinic.consultations import demo_catalogue

        demo_catalogue.load(HUB_NAME, "pharmacist@hub.demo", "pharmacist2@hub.demo")
        from clinic.consultations import demo as consultations_demo

        consultations_demo.load(CLINIC_A, "nurse@jinzhou.demo", "pharmacist@hub.demo")
        consultations_demo.load(CLINIC_B, "nurse@huangge.demo", "pharmacist@hub.demo", count=2)


def accounts_text() -> str:
    lines = [f"Demo accounts (password for all: {DEMO_PASSWORD}):"]
    lines += [f"  {email:<24} {role:<12} {org}" for email, _name, role, org in ACCOUNTS]
    lines.append(
        f"Hub staff and the admin: two-step sign-in key {DEMO_TOTP_SECRET} (authenticator app)."
    )
    return "\n".join(lines)
