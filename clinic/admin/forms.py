"""Administration forms: organisations and their links, users."""

import re
import zoneinfo

from wtforms import (
    BooleanField,
    EmailField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from clinic.forms import Form, at_most, options
from clinic.models import (
    HUB,
    ORGANISATION_KINDS,
    ROLES,
    ROLES_BY_KIND,
    Organisation,
    User,
)
from clinic.translation import lazy_gettext as _l

PHONE = re.compile(r"^\+?[0-9 ()\-]{6,30}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def required(message):
    return DataRequired(message=message)


class NamesInThreeScripts:
    """The English, Traditional and Simplified Chinese names every shared thing carries."""

    name = StringField(
        _l("Name (English)"), validators=[required(_l("Enter the name.")), at_most(120)]
    )
    name_zh_hant = StringField(_l("Name (Traditional Chinese)"), validators=[at_most(120)])
    name_zh_hans = StringField(_l("Name (Simplified Chinese)"), validators=[at_most(120)])


class OrganisationForm(NamesInThreeScripts, Form):
    kind = SelectField(
        _l("Kind"),
        choices=options(ORGANISATION_KINDS.items()),
        validators=[InputRequired(message=_l("Choose the kind."))],
    )
    timezone = StringField(
        _l("Time zone"),
        validators=[at_most(60)],
        description=_l("IANA name, e.g. Asia/Hong_Kong or Asia/Shanghai; blank: the default."),
    )
    address = TextAreaField(_l("Address"), validators=[at_most(300)], render_kw={"rows": 3})
    phone = StringField(_l("Phone"), validators=[at_most(40)])
    mfa_required = BooleanField(_l("Staff sign in with a second step (clinics)"))
    hubs = SelectMultipleField(
        _l("Hub hospitals it refers to"),
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )

    def __init__(self, *args, organisation: Organisation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        hubs = Organisation.select().where(Organisation.kind == HUB).order_by(Organisation.name)
        self.hubs.choices = [(hub.id, hub.label()) for hub in hubs]

    def validate_name(self, field):
        query = Organisation.select().where(Organisation.name == field.data.strip())
        if self.organisation:
            query = query.where(Organisation.id != self.organisation.id)
        if query.exists():
            raise ValidationError(_l("Another organisation has this name."))

    def validate_timezone(self, field):
        if field.data and field.data.strip() not in zoneinfo.available_timezones():
            raise ValidationError(_l("Not a time zone name this system knows."))

    def validate_phone(self, field):
        if field.data and not PHONE.match(field.data.strip()):
            raise ValidationError(_l("Enter digits, spaces and an optional leading +."))

    def validate_hubs(self, field):
        if self.kind.data == HUB and field.data:
            raise ValidationError(_l("A hub hospital does not refer to hubs."))

    def values(self) -> dict:
        """The organisation's own columns as typed (blank optional text is stored as none)."""
        text = ("name", "name_zh_hant", "name_zh_hans", "timezone", "address", "phone")
        values = {name: (self[name].data or "").strip() or None for name in text}
        return values | {"kind": self.kind.data, "mfa_required": self.mfa_required.data}


class UserForm(Form):
    """A user's organisation and role (and, when created, e-mail and name)."""

    email = EmailField(
        _l("Email"),
        validators=[
            required(_l("Enter the email.")),
            Regexp(EMAIL, message=_l("Invalid email address.")),
            at_most(254),
        ],
    )
    name = StringField(_l("Name"), validators=[required(_l("Enter the name.")), at_most(120)])
    organisation = SelectField(
        _l("Organisation"),
        coerce=int,
        validators=[InputRequired(message=_l("Choose the organisation."))],
    )
    role = SelectField(
        _l("Role"),
        choices=options(ROLES.items()),
        validators=[InputRequired(message=_l("Choose the role."))],
    )

    def __init__(self, *args, organisations, user: User | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisations = {o.id: o for o in organisations}
        self.organisation.choices = [(o.id, o.label()) for o in self.organisations.values()]
        self.user = user
        if user:  # the e-mail is the login: fixed once created
            del self.email

    def validate_email(self, field):
        if User.select().where(User.email == field.data.strip().lower()).exists():
            raise ValidationError(_l("A user with this email exists already."))

    def validate_role(self, field):
        organisation = self.organisations.get(self.organisation.data)
        if organisation and field.data not in ROLES_BY_KIND[organisation.kind]:
            raise ValidationError(_l("This role does not exist at that kind of organisation."))

    @property
    def chosen_organisation(self) -> Organisation:
        return self.organisations[self.organisation.data]
