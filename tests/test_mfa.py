"""Two-step sign-in (TOTP): enrolment, codes, recovery codes once only, remembered computers."""

import re

import pyotp

from clinic.models import AuditEvent, Organisation, User

from conftest import SECRET_IN_PAGE, log_in, totp_code

PASSWORD = "long-enough-pw"
CODES_IN_PAGE = re.compile(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>")


def password_step(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def hub_user(runner, email: str = "desk@harbour.example", hub: str = "Harbour Hub") -> str:
    runner.invoke(args=["create-org", hub, "--kind", "hub"])  # no-op when it exists
    runner.invoke(
        args=["create-user", email, "--org", hub, "--role", "coordinator", "--password", PASSWORD]
    )
    return email


def enrol(client, email: str) -> list[str]:
    """Log in for the first time and set up the second factor; the recovery codes shown."""
    assert password_step(client, email).headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = SECRET_IN_PAGE.search(page).group(1)
    confirmed = client.post("/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200
    return CODES_IN_PAGE.findall(confirmed.get_data(as_text=True))


def test_hub_staff_enrol_with_a_qr_code_and_then_log_in_with_a_code(app, runner, client):
    email = hub_user(runner)
    assert password_step(client, email).headers["Location"] == "/login/enrol"
    assert client.get("/today").status_code == 302  # the password alone lets nobody in
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "<svg" in page and "<script" not in page.split("<body>")[1].split("</body>")[0]
    secret = SECRET_IN_PAGE.search(page).group(1)
    refused = client.post("/login/enrol", data={"code": "000000"})
    assert refused.status_code == 422 and "not right" in refused.get_data(as_text=True)
    shown = client.post("/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert len(CODES_IN_PAGE.findall(shown.get_data(as_text=True))) == 10
    assert client.get("/today").status_code == 200
    client.post("/logout")
    assert password_step(client, email).headers["Location"] == "/login/code"
    assert client.post("/login/code", data={"code": "123456"}).status_code == 422
    answer = client.post("/login/code", data={"code": totp_code(email)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/today"
    assert AuditEvent.select().where(AuditEvent.action == "mfa_enrolled").count() == 1


def test_a_recovery_code_signs_in_once_only(app, runner, client):
    email = hub_user(runner)
    codes = enrol(client, email)
    client.post("/logout")
    password_step(client, email)
    assert client.post("/login/code", data={"code": codes[3].upper()}).status_code == 303
    client.post("/logout")
    password_step(client, email)
    again = client.post("/login/code", data={"code": codes[3]})
    assert again.status_code == 422
    assert client.get("/today").status_code == 302


def test_clinic_staff_need_the_second_step_only_when_their_clinic_asks(app, demo_data, client):
    assert (
        password_step(client, "doctor@jinzhou.demo", demo_data.DEMO_PASSWORD).headers["Location"]
        == "/today"
    )
    client.post("/logout")
    Organisation.update(mfa_required=True).where(Organisation.name == demo_data.CLINIC_A).execute()
    step = password_step(client, "doctor@jinzhou.demo", demo_data.DEMO_PASSWORD)
    assert step.headers["Location"] == "/login/enrol"


def test_remembering_the_computer_is_off_by_default_and_skips_the_code(app, demo_data, client):
    email = "coordinator@hub.demo"
    password_step(client, email, demo_data.DEMO_PASSWORD)
    page = client.get("/login/code").get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="remember"[^>]*>', page).group(0)
    assert "checked" not in checkbox
    client.post("/login/code", data={"code": totp_code(email), "remember": "y"})
    client.post("/logout")
    again = password_step(client, email, demo_data.DEMO_PASSWORD)
    assert again.headers["Location"] == "/today"
    # Another computer (no cookie) is still asked for the code.
    other = app.test_client()
    assert password_step(other, email, demo_data.DEMO_PASSWORD).headers["Location"] == "/login/code"


def test_wrong_codes_count_as_failed_attempts(app, demo_data, client):
    email = "coordinator@hub.demo"
    password_step(client, email, demo_data.DEMO_PASSWORD)
    for _ in range(10):
        assert client.post("/login/code", data={"code": "000000"}).status_code == 422
    assert client.post("/login/code", data={"code": totp_code(email)}).status_code == 429


def test_the_demo_hub_staff_log_in_with_the_printed_key(demo_data, coordinator):
    assert coordinator.get("/today").status_code == 200
    assert demo_data.DEMO_TOTP_SECRET in demo_data.accounts_text()
    log_in(coordinator.application.test_client(), "admin@hub.demo")


def test_a_code_used_once_is_refused_the_second_time(app, demo_data):
    email = "coordinator@hub.demo"
    code = totp_code(email)
    first, second = app.test_client(), app.test_client()
    password_step(first, email, demo_data.DEMO_PASSWORD)
    assert first.post("/login/code", data={"code": code}).status_code == 303
    # Someone who saw the code over the shoulder tries it a moment later.
    password_step(second, email, demo_data.DEMO_PASSWORD)
    assert second.post("/login/code", data={"code": code}).status_code == 422
    assert second.get("/today").status_code == 302


def test_an_admin_reset_makes_the_user_enrol_again(app, runner, client, admin):
    email = hub_user(runner, hub="Nansha Hub Hospital")  # a hub's admin governs its own people
    codes = enrol(client, email)
    client.post("/logout")
    person = User.get(User.email == email)
    assert admin.post(f"/admin/users/{person.id}/second-factor").status_code == 303
    assert password_step(client, email).headers["Location"] == "/login/enrol"
    # The old recovery codes are gone with the secret: they open nothing.
    assert client.post("/login/code", data={"code": codes[0]}).headers["Location"] == "/login"
    assert client.get("/today").status_code == 302
    event = AuditEvent.get(AuditEvent.action == "mfa_reset")
    assert (event.user.email, event.object_id) == ("admin@hub.demo", str(person.id))


def test_clinic_staff_may_choose_the_second_step_themselves(app, demo_data, doctor):
    page = doctor.get("/password").get_data(as_text=True)
    assert 'href="/password/two-step"' in page
    secret = SECRET_IN_PAGE.search(doctor.get("/password/two-step").get_data(as_text=True))
    shown = doctor.post("/password/two-step", data={"code": pyotp.TOTP(secret.group(1)).now()})
    assert len(CODES_IN_PAGE.findall(shown.get_data(as_text=True))) == 10
    doctor.post("/logout")
    step = password_step(doctor, "doctor@jinzhou.demo", demo_data.DEMO_PASSWORD)
    assert step.headers["Location"] == "/login/code"
