"""Command line: organisations, users, demo data (init-db and backup: clinic.db; a domain adds
its own, e.g. `create-service`).

Every change made here is audited like one made on the administration pages (no user: "cli").
"""

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from clinic.auth.access import audit
from clinic.auth.passwords import password_problem
from clinic.db import db
from clinic.domains import organisation_summaries
from clinic.models import (
    HUB,
    ORGANISATION_KINDS,
    ROLES,
    ROLES_BY_KIND,
    Organisation,
    User,
)


def organisation_named(name: str) -> Organisation:
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
@click.option("--address", help="The address shown on letters.")
@click.option("--phone", help="The phone number shown on letters.")
def create_org_command(name: str, kind: str, hub_name: str | None, **details: str | None) -> None:
    """Create an organisation: a clinic (linked to its hub) or a hub hospital."""
    if Organisation.by_name(name):
        raise click.ClickException(f"{name!r} exists already.")
    hub = organisation_named(hub_name) if hub_name else None
    if hub and hub.kind != HUB:
        raise click.ClickException(f"{hub_name!r} is not a hub hospital.")
    with db.atomic():
        organisation = Organisation.create(name=name, kind=kind, **details)
        if hub:
            organisation.link_hub(hub)
        audit("organisation_created", "organisation", organisation.id, "cli")
    click.echo(f"Created {kind} {name!r}.")


@click.command("create-user")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="The organisation's name.")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--name", help="Full name as shown to colleagues (default: the e-mail).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user_command(email: str, org_name: str, role: str, name: str | None, password: str):
    """Create a user who can log in."""
    organisation = organisation_named(org_name)
    if role not in ROLES_BY_KIND[organisation.kind]:
        raise click.ClickException(f"A {organisation.kind} has no {role!r} role.")
    if problem := password_problem(password, email):
        raise click.ClickException(str(problem))
    if User.get_or_none(User.email == email.strip().lower()):
        raise click.ClickException(f"{email!r} exists already.")
    with db.atomic():
        user = User.create_with_password(
            password, email=email, name=name or email, role=role, organisation=organisation
        )
        audit("user_created", "user", user.id, f"cli: {role} at {organisation.name}")
    click.echo(f"Created {role} {email} at {organisation.name}.")


@click.command("list-orgs")
@with_appcontext  # the domains registered on the app say what a hub holds
def list_orgs_command() -> None:
    """Every organisation: kind, name, the hubs a clinic refers to, a hub's services."""
    for organisation in Organisation.select().order_by(Organisation.kind.desc(), Organisation.name):
        if organisation.is_hub:
            linked = "; ".join(organisation_summaries(organisation)) or "none"
        else:
            linked = "hubs: " + (", ".join(h.name for h in organisation.hubs()) or "none")
        click.echo(f"{organisation.kind:<7} {organisation.name}  ({linked})")


@click.command("list-users")
@click.option("--org", "org_name", help="Only this organisation's users.")
def list_users_command(org_name: str | None) -> None:
    """Every user: e-mail, role, organisation, and whether they may log in."""
    users = (
        User.select(User, Organisation).join(Organisation).order_by(Organisation.name, User.email)
    )
    if org_name:
        users = users.where(User.organisation == organisation_named(org_name))
    for user in users:
        status = "active" if user.active else "deactivated"
        click.echo(f"{user.email:<32} {user.role:<12} {user.organisation.name}  {status}")


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


@click.command("reindex-search")
@click.option("--batch", default=500, show_default=True, help="Patients per transaction.")
def reindex_search_command(batch: int) -> None:
    """Rebuild every patient's search keys (names, documents, phone and its last four digits)."""
    from clinic.models.patients import Patient

    rebuilt = Patient.reindex_search(batch=batch)
    audit("search_reindexed", "patient", None, f"cli: {rebuilt}")
    click.echo(f"Search keys rebuilt for {rebuilt} patients.")


def init_app(app: Flask) -> None:
    commands = (
        reindex_search_command,
        create_org_command,
        create_user_command,
        list_orgs_command,
        list_users_command,
        demo_command,
    )
    for command in commands:
        app.cli.add_command(command)


def main() -> None:
    """The `clinic` console script: the same commands as `flask --app clinic`."""
    from clinic import create_app

    FlaskGroup(create_app=create_app)()
