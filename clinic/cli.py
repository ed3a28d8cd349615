"""Command line: organisations, users, demo data (init-db and backup live in clinic.db)."""

import click
from flask import Flask
from flask.cli import FlaskGroup

from clinic.auth.passwords import password_problem
from clinic.db import db
from clinic.models import HUB, ORGANISATION_KINDS, ROLES, ROLES_BY_KIND, Organisation, User


def _organisation(name: str) -> Organisation:
    organisation = Organisation.by_name(name)
    if organisation is None:
        raise click.ClickException(f"No organisation named {name!r}.")
    return organisation


@click.command("create-org")
@click.argument("name")
@click.option("--kind", type=click.Choice(list(ORGANISATION_KINDS)), required=True)
@click.option("--hub", "hub_name", help="The hub hospital a clinic refers to.")
@click.option("--timezone", help="IANA time zone, e.g. Asia/Shanghai (default: CLINIC_TIMEZONE).")
@click.option("--name-zh-hant", help="The name in Traditional Chinese.")
@click.option("--name-zh-hans", help="The name in Simplified Chinese.")
def create_org_command(
    name: str,
    kind: str,
    hub_name: str | None,
    timezone: str | None,
    name_zh_hant: str | None,
    name_zh_hans: str | None,
) -> None:
    """Create an organisation: a clinic (linked to its hub) or a hub hospital."""
    if Organisation.by_name(name):
        raise click.ClickException(f"{name!r} exists already.")
    hub = _organisation(hub_name) if hub_name else None
    if hub and hub.kind != HUB:
        raise click.ClickException(f"{hub_name!r} is not a hub hospital.")
    with db.atomic():
        organisation = Organisation.create(
            name=name,
            kind=kind,
            timezone=timezone,
            name_zh_hant=name_zh_hant,
            name_zh_hans=name_zh_hans,
        )
        if hub:
            organisation.link_hub(hub)
    click.echo(f"Created {kind} {name!r}.")


@click.command("create-user")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="The organisation's name.")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--name", help="Full name as shown to colleagues (default: the e-mail).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user_command(email: str, org_name: str, role: str, name: str | None, password: str):
    """Create a user who can log in."""
    organisation = _organisation(org_name)
    if role not in ROLES_BY_KIND[organisation.kind]:
        raise click.ClickException(f"A {organisation.kind} has no {role!r} role.")
    if problem := password_problem(password, email):
        raise click.ClickException(str(problem))
    if User.get_or_none(User.email == email.strip().lower()):
        raise click.ClickException(f"{email!r} exists already.")
    User.create_with_password(
        password, email=email, name=name or email, role=role, organisation=organisation
    )
    click.echo(f"Created {role} {email} at {organisation.name}.")


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Load only into a database with no organisations.")
def demo_command(if_empty: bool) -> None:
    """Load a demo alliance (never on a production database) and print its accounts."""
    from clinic import demo

    if Organisation.select().exists():
        if not if_empty:
            raise click.ClickException("The database has data already; demo needs an empty one.")
        click.echo("Demo data already present.")
    else:
        demo.load()
        click.echo("Loaded the demo alliance.")
    click.echo(demo.accounts_text())


def init_app(app: Flask) -> None:
    for command in (create_org_command, create_user_command, demo_command):
        app.cli.add_command(command)


def main() -> None:
    """The `clinic` console script: the same commands as `flask --app clinic`."""
    from clinic import create_app

    FlaskGroup(create_app=create_app)()
