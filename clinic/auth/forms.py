from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from clinic.auth.passwords import password_problem
from clinic.forms import Form
from clinic.translation import lazy_gettext as _l


class LoginForm(Form):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(message=_l("Enter your email.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(message=_l("Enter your password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()


class CodeForm(Form):
    """The second step: a code from the authenticator app, or one of the recovery codes."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(message=_l("Enter the code.")), Length(max=40)],
        render_kw={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"},
    )
    remember = BooleanField(_l("Remember this computer for 30 days (never on a shared computer)"))


class PasswordChangeForm(Form):
    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(message=_l("Enter your password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        _l("New password"),
        validators=[DataRequired(message=_l("Enter a new password."))],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[EqualTo("new", message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def validate_new(self, field):
        """The one password rule (clinic.auth.passwords), as everywhere a password is set."""
        if problem := password_problem(field.data or "", self.email):
            raise ValidationError(problem)
