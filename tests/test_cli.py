"""The command line operators rely on: create-org, create-user, demo."""

import subprocess
from pathlib import Path

from clinic.models import Organisation, User

from conftest import log_in


def test_create_organisations_and_a_user_who_can_log_in(app, runner, client):
    assert runner.invoke(args=["create-org", "Hub", "--kind", "hub"]).exit_code == 0
    result = runner.invoke(args=["create-org", "Clinic One", "--kind", "clinic", "--hub", "Hub"])
    assert result.exit_code == 0, result.output
    assert [hub.name for hub in Organisation.by_name("Clinic One").hubs()] == ["Hub"]
    result = runner.invoke(
        args=[
            "create-user",
            "GP@One.example",
            "--org",
            "Clinic One",
            "--role",
            "doctor",
            "--name",
            "Dr One",
            "--password",
            "long-enough-pw",
        ]
    )
    assert result.exit_code == 0, result.output
    assert User.get(User.email == "gp@one.example").name == "Dr One"
    log_in(client, "gp@one.example", "long-enough-pw")


def test_create_user_prompts_for_the_password(app, runner):
    runner.invoke(args=["create-org", "Hub", "--kind", "hub"])
    result = runner.invoke(
        args=["create-user", "p@hub.example", "--org", "Hub", "--role", "pharmacist"],
        input="prompted-password\nprompted-password\n",
    )
    assert result.exit_code == 0, result.output
    assert User.authenticate("p@hub.example", "prompted-password")


def test_cli_refuses_bad_input_clearly(app, runner):
    def create_user(role: str, password: str) -> str:
        arguments = f"create-user x@hub.example --org Hub --role {role} --password {password}"
        return runner.invoke(args=arguments.split()).output

    runner.invoke(args=["create-org", "Hub", "--kind", "hub"])
    assert "exists already" in runner.invoke(args=["create-org", "Hub", "--kind", "hub"]).output
    result = runner.invoke(args=["create-org", "C", "--kind", "clinic", "--hub", "Nowhere"])
    assert "No organisation named 'Nowhere'" in result.output
    assert "has no 'nurse' role" in create_user("nurse", "long-enough-pw")
    assert "at least 12 characters" in create_user("coordinator", "short")


def test_create_user_refuses_weak_passwords(app, runner):
    runner.invoke(args=["create-org", "Hub", "--kind", "hub"])
    for password, message in (
        ("password1234", "too common"),
        ("qwertyuiop123", "too common"),
        ("aaaaaaaaaaaaaaa", "different characters"),
        ("abababababababab", "different characters"),
        ("nurse.chan@hub.example", "e-mail"),
        ("nurse.chan2026!", "e-mail"),
        ("eleven-char", "at least 12"),
    ):
        arguments = ["create-user", "nurse.chan@hub.example", "--org", "Hub", "--role",
                     "coordinator", "--password", password]  # fmt: skip
        result = runner.invoke(args=arguments)
        assert result.exit_code != 0 and message in result.output, password
    assert User.select().where(User.email == "nurse.chan@hub.example").count() == 0


def test_demo_loads_once_and_prints_the_accounts(app, runner):
    first = runner.invoke(args=["demo", "--if-empty"])
    assert first.exit_code == 0 and "doctor@jinzhou.demo" in first.output
    organisations = Organisation.select().count()
    again = runner.invoke(args=["demo", "--if-empty"])
    assert "already present" in again.output and "doctor@jinzhou.demo" in again.output
    assert Organisation.select().count() == organisations
    assert runner.invoke(args=["demo"]).exit_code != 0


def test_organisation_names_show_in_the_readers_script(app, runner, client):
    runner.invoke(
        args=["create-org", "Harbour Hub", "--kind", "hub", "--name-zh-hant", "海港中心醫院",
              "--name-zh-hans", "海港中心医院"]
    )  # fmt: skip
    runner.invoke(
        args=["create-user", "c@harbour.example", "--org", "Harbour Hub", "--role",
              "coordinator", "--password", "long-enough-pw"]
    )  # fmt: skip
    log_in(client, "c@harbour.example", "long-enough-pw")
    assert "Harbour Hub" in client.get("/today").get_data(as_text=True)
    client.post("/language", data={"lang": "zh_Hant_HK"})
    assert "海港中心醫院" in client.get("/today").get_data(as_text=True)
    client.post("/language", data={"lang": "zh_Hans_CN"})
    assert "海港中心医院" in client.get("/today").get_data(as_text=True)


def test_make_run_serves_on_the_port_asked_for():
    """5000 is taken on some systems (macOS AirPlay): make run PORT=8080."""
    root = Path(__file__).resolve().parent.parent
    plan = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert "--port 8123" in plan
    default = subprocess.run(
        ["make", "-n", "run"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert "--port 5000" in default
