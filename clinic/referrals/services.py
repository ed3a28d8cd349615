"""A hub's services, which clinics refer to: administered on the hub's organisation page and
from the command line (`create-service`)."""

import re

import click
from flask import Blueprint, abort, flash, redirect, url_for
from wtforms import BooleanField, StringField
from wtforms.validators import ValidationError

from clinic.admin.forms import NamesInThreeScripts, required
from clinic.admin.views import governed_organisation, governed_organisations
from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.cli import organisation_named
from clinic.db import db
from clinic.forms import Form, at_most
from clinic.htmx import render
from clinic.models import ADMIN, Organisation
from clinic.models.referrals import HubService
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

bp = Blueprint("hub_services", __name__, url_prefix="/admin")
SERVICE_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ServiceForm(NamesInThreeScripts, Form):
    code = StringField(
        _l("Code"),
        validators=[required(_l("Enter a short code.")), at_most(40)],
        description=_l("Lower-case letters, digits, - and _; e.g. cardiology."),
    )
    name_zh_hant = StringField(
        _l("Name (Traditional Chinese)"),
        validators=[required(_l("Enter the name.")), at_most(120)],
    )
    name_zh_hans = StringField(
        _l("Name (Simplified Chinese)"),
        validators=[required(_l("Enter the name.")), at_most(120)],
    )
    cross_border = BooleanField(_l("Needs the patient's cross-border consent"))
    active = BooleanField(_l("Takes referrals"), default=True)

    def __init__(self, *args, hub: Organisation, service: HubService | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.hub, self.service = hub, service

    def validate_code(self, field):
        field.data = field.data.strip().lower()
        if not SERVICE_CODE.match(field.data):
            raise ValidationError(_l("Lower-case letters, digits, - and _ only."))
        query = HubService.select().where(HubService.hub == self.hub, HubService.code == field.data)
        if self.service:
            query = query.where(HubService.id != self.service.id)
        if query.exists():
            raise ValidationError(_l("This hub has a service with this code already."))

    def values(self) -> dict:
        names = {n: self[n].data.strip() for n in ("code", "name", "name_zh_hant", "name_zh_hans")}
        return names | {"cross_border": self.cross_border.data, "active": self.active.data}


# ---- pages -------------------------------------------------------------------------------
def _hub(organisation_id: int) -> Organisation:
    hub = governed_organisation(organisation_id)
    if not hub.is_hub:
        abort(404)
    return hub


@bp.route("/organisations/<int:organisation_id>/services/new", methods=["GET", "POST"])
@roles_required(ADMIN)
def new_service(organisation_id: int):
    hub = _hub(organisation_id)
    return _save_service(hub, HubService(hub=hub), "service_created")


@bp.route("/services/<int:service_id>", methods=["GET", "POST"])
@roles_required(ADMIN)
def service(service_id: int):
    services = HubService.select().where(HubService.hub.in_(governed_organisations()))
    found = get_visible_or_404(services, service_id, "service")
    return _save_service(found.hub, found, "service_changed")


def _save_service(hub: Organisation, service: HubService, action: str):
    existing = service.id is not None
    form = ServiceForm(obj=service if existing else None, hub=hub, service=service)
    if not form.validate_on_submit():
        status = 422 if form.errors else 200
        return render("referrals/service.html", form=form, hub=hub, service=service,
                      status=status)  # fmt: skip
    with db.atomic():
        for name, value in form.values().items():
            setattr(service, name, value)
        service.save()
        audit(action, "service", service.id, f"{hub.name}: {service.code}")
    flash(_("Service %(name)s saved.", name=service.label()), "success")
    return redirect(url_for("admin.organisation", organisation_id=hub.id), code=303)


def section(organisation: Organisation) -> dict:
    """A hub's services, for its organisation page."""
    if not organisation.is_hub:
        return {}
    return {"hub": organisation, "services": list(organisation.services.order_by(HubService.code))}


def summary(organisation: Organisation) -> str | None:
    """A hub's service codes, for `list-orgs`."""
    if not organisation.is_hub:
        return None
    codes = [s.code for s in organisation.services.order_by(HubService.code)]
    return "services: " + (", ".join(codes) or "none")


# ---- command line --------------------------------------------------------------------------
@click.command("create-service")
@click.argument("hub_name", metavar="HUB")
@click.argument("code")
@click.option("--name", required=True, help="The name in English.")
@click.option("--name-zh-hant", required=True, help="The name in Traditional Chinese.")
@click.option("--name-zh-hans", required=True, help="The name in Simplified Chinese.")
@click.option("--cross-border", is_flag=True, help="Referrals need cross-border consent.")
def create_service_command(hub_name: str, code: str, **fields) -> None:
    """Add a service to a hub hospital: clinics linked to the hub can then refer to it."""
    hub = organisation_named(hub_name)
    if not hub.is_hub:
        raise click.ClickException(f"{hub_name!r} is not a hub hospital.")
    code = code.strip().lower()
    if HubService.select().where(HubService.hub == hub, HubService.code == code).exists():
        raise click.ClickException(f"{hub_name!r} has a service {code!r} already.")
    with db.atomic():
        service = HubService.create(hub=hub, code=code, **fields)
        audit("service_created", "service", service.id, f"cli: {hub.name}: {code}")
    click.echo(f"Created service {code!r} at {hub.name}.")
