"""Consultation forms: each owns its validation, with messages in the user's language."""

from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Optional, ValidationError

from clinic.forms import Form, OnceForm, SubForm, at_most, options
from clinic.models.consultations import (
    PHRASE_PARTS,
    PREGNANCY,
    QUESTION_TYPES,
    URGENCIES,
    WHERE_REGISTERED,
)
from clinic.models.phrases import PHRASE_KINDS, Phrase
from clinic.translation import lazy_gettext as _l


def text(label, required=None, max_length=4000, rows=3):
    validators = [DataRequired(message=required)] if required else [Optional()]
    validators.append(at_most(max_length))
    return TextAreaField(label, validators=validators, render_kw={"rows": rows})


class AskForm(OnceForm):
    """A clinic's question to its hub pharmacists (reviewed with similar answers, then sent)."""

    hub = SelectField(_l("Hub hospital"), coerce=int, validate_choice=False)
    drug_text = StringField(
        _l("Drug"),
        validators=[DataRequired(message=_l("Name the drug.")), at_most(200)],
        filters=[lambda v: (v or "").strip()],
    )
    drug_id = HiddenField()
    where_registered = RadioField(
        _l("Where registered"), choices=options(WHERE_REGISTERED.items()), default="unknown",
        validators=[InputRequired(message=_l("Choose where the drug is registered."))],
    )  # fmt: skip
    gba_listed = BooleanField(
        _l("Listed under the Hong Kong and Macao Drugs and Devices scheme (港澳藥械通)")
    )
    question_type = SelectField(
        _l("Question type"), choices=options(QUESTION_TYPES.items(), blank=True),
        validators=[InputRequired(message=_l("Choose the question type."))],
    )  # fmt: skip
    details = text(_l("Details"), _l("Write the question."), rows=4)
    urgency = RadioField(
        _l("Urgency"), choices=options(URGENCIES.items()), default="routine",
        validators=[InputRequired(message=_l("Choose the urgency."))],
    )  # fmt: skip
    patient_specific = BooleanField(_l("About this patient (not a general question)"), default=True)
    medications = text(_l("Current medications"), max_length=2000)
    allergies = text(_l("Allergies"), max_length=1000, rows=2)
    pregnancy = SelectField(
        _l("Pregnancy or breastfeeding"), choices=options(PREGNANCY.items()), default="unknown"
    )
    renal_impairment = BooleanField(_l("Renal impairment"))
    hepatic_impairment = BooleanField(_l("Hepatic impairment"))
    confirm = HiddenField()  # "1" once the asker has seen the similar past answers

    def __init__(self, *args, hubs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.hubs = {h.id: h for h in hubs}
        self.hub.choices = options((h.id, h.label()) for h in self.hubs.values())
        if self.hub.data is None and self.hubs:
            self.hub.data = next(iter(self.hubs))

    def validate_hub(self, field):
        if field.data not in self.hubs:
            raise ValidationError(_l("Choose one of your clinic's hubs."))

    def validate_question_type(self, field):
        if field.data not in QUESTION_TYPES:
            raise ValidationError(_l("Choose the question type."))

    @property
    def chosen_hub(self):
        return self.hubs.get(self.hub.data)

    def question_fields(self) -> dict:
        names = ("drug_text", "where_registered", "gba_listed", "question_type", "details",
                 "urgency", "medications", "allergies", "pregnancy", "renal_impairment",
                 "hepatic_impairment")  # fmt: skip
        return {name: self[name].data for name in names}


def _phrase_select(kind: str) -> SelectField:
    return SelectField(PHRASE_KINDS[kind], coerce=str, validate_choice=False)


class LineForm(SubForm):
    """One guidance line: the drug, then a phrase of each kind (approved, by exact version)."""

    drug_text = StringField(_l("Drug"), validators=[Optional(), at_most(200)])
    dose = _phrase_select("dose")
    frequency = _phrase_select("frequency")
    route = _phrase_select("route")
    timing = _phrase_select("timing")
    duration = _phrase_select("duration")
    warning = _phrase_select("warning")


class ReferenceForm(SubForm):
    title = StringField(_l("Reference"), validators=[Optional(), at_most(300)])
    source = StringField(_l("Source"), validators=[Optional(), at_most(200)])
    link = StringField(_l("Link (optional)"), validators=[Optional(), at_most(500)])


class AnswerForm(Form):
    """The pharmacist's answer: guidance lines of approved phrases, a note, references."""

    lines = FieldList(FormField(LineForm), min_entries=2, max_entries=8)
    note = text(_l("Note (in the language you write it)"), max_length=4000, rows=4)
    references = FieldList(FormField(ReferenceForm), min_entries=1, max_entries=6)
    more = StringField()  # "line" / "reference": add a blank one and show the form again

    def __init__(self, *args, hub=None, **kwargs):
        super().__init__(*args, **kwargs)
        by_kind = {kind: [] for kind in PHRASE_PARTS}
        for phrase in Phrase.usable(hub=hub):  # one statement for every picker
            by_kind.setdefault(phrase.kind, []).append(phrase)
        self.choices = {
            kind: options(
                ((str(p.id), f"{p.text_en} | {p.text_hant} | {p.text_hans}") for p in phrases),
                blank=True,
            )
            for kind, phrases in by_kind.items()
        }
        for entry in self.lines:
            for kind in PHRASE_PARTS:
                entry.form[kind].choices = self.choices[kind]

    def add_blank(self) -> None:
        target = self.lines if self.more.data == "line" else self.references
        if len(target.entries) < target.max_entries:
            entry = target.append_entry()
            if target is self.lines:
                for kind in PHRASE_PARTS:
                    entry.form[kind].choices = self.choices[kind]

    def validate_note(self, field):
        has_line = any(any(entry.form[kind].data for kind in PHRASE_PARTS) for entry in self.lines)
        if not has_line and not (field.data or "").strip():
            raise ValidationError(_l("Give at least one guidance line or a note."))

    def answer_data(self) -> dict:
        lines = [
            {name: (entry.form[name].data or None) for name in ("drug_text", *PHRASE_PARTS)}
            for entry in self.lines
        ]
        references = [entry.form.data for entry in self.references]
        return {"lines": lines, "note": self.note.data or "", "references": references}


class QuestionForm(Form):
    question = text(_l("Question for the clinic"), _l("Write the question for the clinic."), rows=2)


class InfoForm(Form):
    answer = text(
        _l("Answer for the pharmacist"), _l("Write the answer for the pharmacist."), rows=3
    )


class SendBackForm(Form):
    reason = text(_l("What needs changing"), _l("Say what needs changing."), rows=2)


class CancelForm(Form):
    reason = text(_l("Reason for cancelling"), _l("Give the reason for cancelling."), rows=2)


MOVE_FORMS = {
    "request_info": QuestionForm,
    "give_info": InfoForm,
    "send_back": SendBackForm,
    "cancel": CancelForm,
}
