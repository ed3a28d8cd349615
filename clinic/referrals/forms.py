"""Referral forms: each owns its validation, with messages in the user's language."""

from flask_babel import to_utc
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Optional,
    Regexp,
    ValidationError,
)

from clinic.forms import Form, OnceForm, at_most, options, upcoming
from clinic.i18n import local_now
from clinic.models import Consent
from clinic.models.referrals import MOBILITY, PRIORITIES, HubService
from clinic.translation import lazy_gettext as _l


def text(label, required=None, max_length=4000, rows=3, description=""):
    validators = [DataRequired(message=required)] if required else [Optional()]
    validators.append(at_most(max_length))
    return TextAreaField(
        label, validators=validators, render_kw={"rows": rows}, description=description
    )


class ClinicalFields(OnceForm):
    """What every referral says, up to the hub or down to a clinic."""

    priority = RadioField(
        _l("Priority"),
        choices=options(PRIORITIES.items()),
        default="routine",
        validators=[InputRequired(message=_l("Choose the priority."))],
    )
    reason = text(_l("Reason for referral"), _l("Give the reason for referral."))
    clinical_summary = text(_l("Clinical summary"))
    working_diagnosis = StringField(_l("Working diagnosis"), validators=[Optional(), at_most(200)])
    medications = text(_l("Current medications"))
    allergies = text(_l("Allergies"), max_length=1000)


class ReferralForm(ClinicalFields):
    """An up-referral, written by a clinic doctor from a patient's record."""

    service = SelectField(
        _l("Service"), coerce=int, validators=[InputRequired(message=_l("Choose a service."))]
    )
    icd10 = StringField(
        _l("ICD-10 code"),
        validators=[
            Optional(),
            Regexp(
                r"^[A-Za-z][0-9]{2}(\.[0-9A-Za-z]{1,4})?$",
                message=_l("An ICD-10 code looks like I20.8 or E11."),
            ),
        ],
        filters=[lambda v: v.strip().upper() if v else v],
    )
    results = text(_l("Relevant results"))
    direct_billing = BooleanField(_l("Insurance direct billing"))
    transport_needed = BooleanField(_l("Transport needed"))
    mobility = SelectField(
        _l("Mobility"),
        choices=options(MOBILITY.items(), blank=True),
        validators=[Optional()],
    )
    escort = BooleanField(_l("Escort needed"))
    pickup_notes = text(_l("Pickup notes"), max_length=1000)
    consent_given = BooleanField(
        _l("The patient consents to cross-border sharing of records for this referral")
    )
    send = StringField()  # the button pressed: "submit" or "draft"

    def __init__(self, *args, hubs=(), consent=None, **kwargs):  # hubs: a query or a list
        super().__init__(*args, **kwargs)
        self.consent = consent
        if self.drafting:
            # A draft may be unfinished: only the service (it names the hub) is needed now;
            # the rest is checked when it is submitted.
            self.reason.validators = [Optional(), at_most(4000)]
        self.services = {s.id: s for s in HubService.for_hubs(hubs)}
        self.service.choices = options(
            (s.id, f"{s.hub.label()} · {s.label()}" + (" *" if s.cross_border else ""))
            for s in self.services.values()
        )

    @property
    def drafting(self) -> bool:
        return self.send.data == "draft"

    @property
    def chosen_service(self) -> HubService | None:
        return self.services.get(self.service.data)

    def validate_service(self, field):
        if field.data not in self.services:
            raise ValidationError(_l("Choose a service."))

    def validate_consent_given(self, field):
        service = self.chosen_service
        if self.drafting or not (service and service.cross_border):
            return
        if not self.consent and not field.data:
            raise ValidationError(
                _l("This service is across the border: the patient's consent is required.")
            )


class AcceptForm(Form):
    appointment_at = DateTimeLocalField(
        _l("Appointment time"),
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired(message=_l("Give the appointment time.")), upcoming],
    )
    appointment_place = StringField(
        _l("Place"),
        validators=[
            DataRequired(message=_l("Give the place.")),
            at_most(200),
        ],
    )
    appointment_instructions = text(_l("Instructions for the patient"), max_length=2000, rows=2)
    transport_arranged = BooleanField(_l("Transport arranged"))

    def validate_appointment_at(self, field):
        if field.data and field.data < local_now():
            raise ValidationError(_l("This time has passed: give an appointment still to come."))

    def move_data(self) -> dict:
        """The appointment typed in the organisation's time zone, stored in UTC."""
        data = super().move_data()
        data["appointment_at"] = to_utc(data["appointment_at"]).replace(tzinfo=None)
        return data


class DeclineForm(Form):
    reason = text(_l("Reason for declining"), _l("Give the reason for declining."), rows=2)


class QuestionForm(Form):
    question = text(_l("Question for the referring doctor"), _l("Write the question."), rows=2)


class AnswerForm(Form):
    answer = text(_l("Answer"), _l("Write the answer."), rows=3)


class CancelForm(Form):
    reason = text(_l("Reason for cancelling"), _l("Give the reason for cancelling."), rows=2)


class BackReferralForm(Form):
    br_diagnosis = text(_l("Diagnosis"), _l("The back-referral needs a diagnosis."), rows=2)
    br_treatment = text(_l("Treatment"), rows=2)
    br_medication_changes = text(
        _l("Medication changes"), rows=3,
        description=_l("One change a line: start, stop or change, the drug and the dose."),
    )  # fmt: skip
    br_follow_up_plan = text(_l("Follow-up plan"), rows=2)
    br_follow_up_due = DateField(_l("Follow-up due date"), validators=[Optional(), upcoming])


class DownReferralForm(ClinicalFields):
    """A hub specialist refers a patient back to a community clinic for follow-up."""

    clinic = SelectField(
        _l("Clinic"), coerce=int, validators=[InputRequired(message=_l("Choose a clinic."))]
    )
    consent_given = BooleanField(
        _l("The patient consents to their record being shared with this clinic")
    )

    def __init__(self, *args, clinics=(), source=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        self.clinic.choices = options((c.id, c.label()) for c in clinics)

    def validate_clinic(self, field):
        if field.data not in {choice.value for choice in self.clinic.choices}:
            raise ValidationError(_l("Choose a clinic."))

    def validate_consent_given(self, field):
        """Another clinic than the one that referred the patient: only with consent naming it."""
        clinic, source = self.clinic.data, self.source
        if clinic == source.from_org_id or field.data:
            return
        if Consent.naming(source.patient_id, clinic) is None:
            raise ValidationError(_l("Another clinic needs the patient's consent naming it."))


# The form each move asks for first, by move name (moves without one are a single button).
MOVE_FORMS = {
    "accept": AcceptForm,
    "decline": DeclineForm,
    "request_info": QuestionForm,
    "answer": AnswerForm,
    "cancel": CancelForm,
    "back_referral": BackReferralForm,
}
