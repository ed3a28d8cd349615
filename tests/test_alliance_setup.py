"""An alliance set up from nothing, through the CLI and the administration pages only."""

import re

import pytest

from clinic.models import AuditEvent, HubService, Organisation, Patient, User
from clinic.models.referrals import Referral

from conftest import log_in

ADMIN_PASSWORD = "quiet-harbour-lantern-2026"
TEMPORARY = re.compile(r'<code id="temporary-password">([^<]+)</code>')


def cli(runner, *arguments: str) -> str:
    result = runner.invoke(args=list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def pearl(app, runner):
    """A hub, its first service and its administrator, made with the documented commands."""
    cli(runner, "init-db")
    cli(runner, "create-org", "Pearl Hub", "--kind", "hub", "--name-zh-hant", "明珠醫院",
        "--name-zh-hans", "明珠医院", "--timezone", "Asia/Shanghai")  # fmt: skip
    cli(runner, "create-service", "Pearl Hub", "Cardiology", "--name", "Cardiology",
        "--name-zh-hant", "心臟科", "--name-zh-hans", "心脏科")  # fmt: skip
    cli(runner, "create-user", "admin@pearl.example", "--org", "Pearl Hub", "--role", "admin",
        "--password", ADMIN_PASSWORD)  # fmt: skip
    return Organisation.by_name("Pearl Hub")


def new_user(admin, organisation: Organisation, email: str, role: str) -> str:
    """Created on the users page; the temporary password the page prints."""
    data = {"email": email, "name": email.split("@")[0], "organisation": organisation.id}
    page = admin.post("/admin/users/new", data=data | {"role": role})
    assert page.status_code == 200, page.get_data(as_text=True)
    return TEMPORARY.search(page.get_data(as_text=True)).group(1)


def first_login(app, email: str, temporary: str):
    """Log in with the temporary password, then choose one's own (nothing else opens before)."""
    client = log_in(app.test_client(), email, temporary)
    assert client.get("/today").headers["Location"].startswith("/password")
    own = f"kowloon-ferry-{len(email)}-morning"
    changed = client.post("/password", data={"current": temporary, "new": own, "confirm": own})
    assert changed.status_code == 303
    assert client.get("/today").status_code == 200
    return client


def test_a_clinic_doctor_refers_to_a_hub_set_up_from_nothing(app, runner, pearl):
    admin = log_in(app.test_client(), "admin@pearl.example", ADMIN_PASSWORD)
    created = admin.post(
        "/admin/organisations/new",
        data={
            "name": "Harbour Family-Doctor Clinic",
            "name_zh_hant": "海港家庭醫生診所",
            "name_zh_hans": "海港家庭医生诊室",
            "kind": "clinic",
            "timezone": "Asia/Hong_Kong",
            "address": "1 Harbour Road, Nansha",
            "phone": "+86 20 3456 7890",
            "hubs": [pearl.id],
        },
    )
    assert created.status_code == 303
    clinic = Organisation.by_name("Harbour Family-Doctor Clinic")
    assert [hub.name for hub in clinic.hubs()] == ["Pearl Hub"]
    assert clinic.address == "1 Harbour Road, Nansha"
    added = admin.post(
        f"/admin/organisations/{pearl.id}/services/new",
        data={"code": "crossborder", "name": "Cross-border Centre", "name_zh_hant": "跨境中心",
              "name_zh_hans": "跨境中心", "cross_border": "y", "active": "y"},
    )  # fmt: skip
    assert added.status_code == 303
    assert HubService.get(HubService.code == "crossborder").cross_border
    page = admin.get(f"/admin/organisations/{pearl.id}").get_data(as_text=True)
    assert "Cardiology" in page and "Cross-border Centre" in page

    temporary = new_user(admin, clinic, "gp@harbour.example", "doctor")
    doctor = first_login(app, "gp@harbour.example", temporary)
    registered = doctor.post(
        "/patients/new",
        data={"chinese_name": "何家明", "english_name": "HO, Ka Ming", "sex": "M",
              "date_of_birth": "1958-11-02", "residency": "hk", "preferred_language": "en",
              "documents-0-kind": "hkid", "documents-0-number": "E364912(5)",
              "phone": "9123 4567"},
    )  # fmt: skip
    assert registered.status_code == 303, registered.get_data(as_text=True)
    patient = Patient.get(Patient.english_name == "HO, Ka Ming")
    form = doctor.get(f"/referrals/new?patient={patient.id}").get_data(as_text=True)
    cardiology = HubService.get(HubService.code == "cardiology")
    assert f'value="{cardiology.id}"' in form
    referred = doctor.post(
        f"/referrals/new?patient={patient.id}",
        data={"service": cardiology.id, "priority": "routine", "reason": "Palpitations",
              "clinical_summary": "Two weeks", "send": "submit"},
    )  # fmt: skip
    assert referred.status_code == 303, referred.get_data(as_text=True)
    referral = Referral.get(Referral.patient == patient)
    assert (referral.state, referral.to_org.name) == ("submitted", "Pearl Hub")
    letter = doctor.get(f"/referrals/{referral.id}/letter").get_data(as_text=True)
    assert "1 Harbour Road, Nansha" in letter and "+86 20 3456 7890" in letter

    temporary = new_user(admin, pearl, "desk@pearl.example", "coordinator")
    desk = first_login(app, "desk@pearl.example", temporary)
    assert "HO, Ka Ming" in desk.get("/referrals/").get_data(as_text=True)
    audited = {event.action for event in AuditEvent.select()}
    for action in ("organisation_created", "service_created", "user_created", "password_changed"):
        assert action in audited, action


def test_cli_lists_organisations_and_users(runner, pearl):
    cli(runner, "create-org", "Harbour Clinic", "--kind", "clinic", "--hub", "Pearl Hub")
    organisations = cli(runner, "list-orgs")
    assert "Pearl Hub  (services: cardiology)" in organisations
    assert "Harbour Clinic  (hubs: Pearl Hub)" in organisations
    assert "admin@pearl.example" in cli(runner, "list-users")
    result = runner.invoke(args=["create-service", "Harbour Clinic", "x", "--name", "X",
                                 "--name-zh-hant", "X", "--name-zh-hans", "X"])  # fmt: skip
    assert "not a hub hospital" in result.output
    again = runner.invoke(args=["create-service", "Pearl Hub", "cardiology", "--name", "C",
                                "--name-zh-hant", "C", "--name-zh-hans", "C"])  # fmt: skip
    assert "already" in again.output


def test_admin_changes_role_and_organisation_resets_password_and_second_factor(app, runner, pearl):
    cli(runner, "create-org", "Harbour Clinic", "--kind", "clinic", "--hub", "Pearl Hub")
    clinic = Organisation.by_name("Harbour Clinic")
    admin = log_in(app.test_client(), "admin@pearl.example", ADMIN_PASSWORD)
    desk = first_login(app, "desk@pearl.example", new_user(admin, pearl, "desk@pearl.example",
                                                           "coordinator"))  # fmt: skip
    person = User.get(User.email == "desk@pearl.example")
    assert person.totp_secret  # hub staff enrolled at first login
    wrong = admin.post(f"/admin/users/{person.id}", data={"name": "Desk", "organisation": clinic.id,
                                                          "role": "coordinator"})  # fmt: skip
    assert wrong.status_code == 422
    assert "does not exist at that kind" in wrong.get_data(as_text=True)
    moved = admin.post(f"/admin/users/{person.id}", data={"name": "Desk", "organisation": clinic.id,
                                                          "role": "nurse"})  # fmt: skip
    assert moved.status_code == 303
    person = User.get_by_id(person.id)
    assert (person.role, person.organisation_id) == ("nurse", clinic.id)
    assert desk.get("/today").status_code == 302  # logged out everywhere by the move
    assert admin.post(f"/admin/users/{person.id}/second-factor").status_code == 303
    assert User.get_by_id(person.id).totp_secret is None
    page = admin.post(f"/admin/users/{person.id}/password").get_data(as_text=True)
    temporary = TEMPORARY.search(page).group(1)
    assert User.authenticate("desk@pearl.example", temporary).must_change_password
    assert admin.post(f"/admin/users/{person.id}/active", data={"active": "0"}).status_code == 303
    assert User.authenticate("desk@pearl.example", temporary) is None
    admin.post(f"/admin/users/{person.id}/active", data={"active": "1"})
    assert User.authenticate("desk@pearl.example", temporary)
    audited = [e.action for e in AuditEvent.select().where(AuditEvent.object_id == str(person.id))]
    for action in ("user_changed", "mfa_reset", "password_reset", "user_deactivated",
                   "user_activated"):  # fmt: skip
        assert action in audited, action


def test_invalid_organisation_comes_back_with_what_was_typed(app, runner, pearl):
    admin = log_in(app.test_client(), "admin@pearl.example", ADMIN_PASSWORD)
    page = admin.post(
        "/admin/organisations/new",
        data={"name": "Pearl Hub", "kind": "clinic", "timezone": "Mars/Olympus",
              "phone": "call me", "address": "12 Sea View"},
    )  # fmt: skip
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "Another organisation has this name." in html
    assert "Not a time zone name this system knows." in html
    assert "12 Sea View" in html


def test_a_clinic_admin_governs_only_their_own_clinic(app, runner, pearl, demo_data):
    cli(runner, "create-user", "admin@jinzhou.example", "--org", demo_data.CLINIC_A, "--role",
        "admin", "--password", ADMIN_PASSWORD)  # fmt: skip
    admin = log_in(app.test_client(), "admin@jinzhou.example", ADMIN_PASSWORD)
    assert admin.get(f"/admin/organisations/{pearl.id}").status_code == 404
    assert admin.get("/admin/organisations/new").status_code == 403
    listed = admin.get("/admin/users").get_data(as_text=True)
    assert "nurse@jinzhou.demo" in listed and "coordinator@hub.demo" not in listed
