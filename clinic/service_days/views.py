"""Family-doctor service days: calendar, planning, one day with its slots, bookings, roster."""

import calendar
import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from clinic.auth.access import audit, get_visible_or_404, roles_required
from clinic.db import compiled_rows
from clinic.fhir import fhir_response
from clinic.htmx import render, trigger, wants_fragment
from clinic.i18n import bilingual, local_today
from clinic.models import (
    ADMIN,
    COORDINATOR,
    DOCTOR,
    NURSE,
    PHARMACIST,
    SPECIALIST,
    Booking,
    BookingEvent,
    Patient,
    Place,
    ServiceDay,
    Slot,
    SubmissionKey,
)
from clinic.models.bookings import SlotFull
from clinic.models.service_days import (
    CANCELLED,
    CLINIC_FEED,
    CLINIC_STAFF,
    PUBLISHED,
    STAFF_FEED,
    THEMES,
    CalendarFeed,
)
from clinic.moving import make_move
from clinic.service_days import forms
from clinic.service_days.ical import calendar_for
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l
from clinic.workflow import TransitionError

bp = Blueprint("service_days", __name__, url_prefix="/service-days")
STAFF_ROLES = (DOCTOR, NURSE, COORDINATOR, SPECIALIST, PHARMACIST)
LOOK_AHEAD = dt.timedelta(days=60)
MONTHS_LINKED, WEEKS_LINKED = 2, 2  # how far the calendar's arrows go from today


@bp.app_template_filter("hm")
def hours_minutes(time: dt.time) -> str:
    return f"{time:%H:%M}"


@bp.app_context_processor
def service_day_helpers():
    return {"patient_service_days": _patient_service_days}


def _patient_service_days(patient) -> dict:
    """On the patient page (clinic staff): their bookings, and published days to book."""
    if patient.clinic_id != current_user.organisation_id:
        return {}
    upcoming = ServiceDay.between(current_user, local_today(), local_today() + LOOK_AHEAD)
    return {
        "bookings": list(Booking.of_patient(patient)),
        "upcoming": list(upcoming.where(ServiceDay.state == PUBLISHED).limit(6)),
    }


def nav_count(user):
    """Patients to telephone (promoted from a waitlist, or their day cancelled)."""
    if user.has_role(*CLINIC_STAFF) and user.organisation.is_clinic:
        return Booking.to_call(user.organisation_id)
    return None


def today_section(user) -> dict:
    """Today's days of the user's clinic and the days they staff, with their counts."""
    if user.has_role(ADMIN):
        return {}
    today = local_today()

    def query():
        days = ServiceDay.between(user, today, today).where(ServiceDay.state != CANCELLED)
        return Booking.with_counts(days)

    # ServiceDay.visible_to is built from the user's id and organisation (its id and kind).
    key = ("service days", *user.reader_key, today)
    days = compiled_rows(key, query)
    if not days:
        return {}
    counts = {d.id: {s: getattr(d, f"n_{s}") for s in ("booked", "attended", "waitlisted")}
              for d in days}  # fmt: skip
    return {"service_days_today": days, "service_day_counts": counts}


# ---- loading ------------------------------------------------------------------------------
def _load(day_id) -> ServiceDay:
    """The day if the user's clinic holds it or they staff it; 404 (audited) otherwise."""
    query = ServiceDay.joined(ServiceDay.visible_to(current_user))
    return get_visible_or_404(query, day_id, "service_day")


def _own(day_id) -> ServiceDay:
    """A day of the user's own clinic (for changes); 404 (audited) otherwise."""
    query = ServiceDay.joined(ServiceDay.select().where(ServiceDay.clinic == _clinic_id()))
    return get_visible_or_404(query, day_id, "service_day")


def _own_booking(booking_id) -> Booking:
    query = Booking.select(Booking, ServiceDay, Patient).join(ServiceDay).switch(Booking)
    query = query.join(Patient).where(Booking.clinic == _clinic_id())
    return get_visible_or_404(query, booking_id, "service_booking")


def _clinic_id() -> int | None:
    return current_user.organisation_id if current_user.organisation.is_clinic else None


def _back(day: ServiceDay, anchor: str = ""):
    return redirect(url_for("service_days.show", day_id=day.id) + anchor, code=303)


# ---- calendar -----------------------------------------------------------------------------
def _month(value: str | None) -> dt.date:
    try:
        return dt.datetime.strptime(value or "", "%Y-%m").date()
    except ValueError:
        return local_today().replace(day=1)


@bp.route("/")
@roles_required(*STAFF_ROLES)
def index():
    """The month: a plain table of weeks (htmx swaps it when moving between months)."""
    first = _month(request.args.get("month"))
    weeks = calendar.Calendar().monthdatescalendar(first.year, first.month)
    days = _by_date(ServiceDay.between(current_user, weeks[0][0], weeks[-1][-1]))
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return render(
        "service_days/index.html", "service_days/_month.html",
        first=first, weeks=weeks, days=days, today=local_today(),
        previous=previous if _in_range(previous) else None,
        following=following if _in_range(following) else None,
    )  # fmt: skip


def _in_range(month: dt.date) -> bool:
    """The calendar moves a few months each way from today (the linked pages stay few)."""
    today = local_today().replace(day=1)
    return abs((month.year - today.year) * 12 + month.month - today.month) <= MONTHS_LINKED


@bp.route("/week")
@roles_required(*STAFF_ROLES)
def week():
    try:
        start = dt.date.fromisoformat(request.args.get("start", ""))
    except ValueError:
        start = local_today()
    start -= dt.timedelta(days=start.weekday())
    dates = [start + dt.timedelta(days=n) for n in range(7)]
    days = _by_date(ServiceDay.between(current_user, dates[0], dates[-1]))
    this_week = local_today() - dt.timedelta(days=local_today().weekday())
    near = [start + dt.timedelta(weeks=n) for n in (-1, 1)]
    near = [w if abs((w - this_week).days) <= 7 * WEEKS_LINKED else None for w in near]
    return render(
        "service_days/week.html", dates=dates, days=days, today=local_today(),
        previous=near[0], following=near[1],
    )  # fmt: skip


def _by_date(query) -> dict:
    days: dict = {}
    for day in query:
        days.setdefault(day.date, []).append(day)
    return days


# ---- planning -----------------------------------------------------------------------------
def _day_form(form_class, **kwargs):
    clinic = current_user.organisation
    return form_class(
        places=list(Place.of(clinic.id)), staff=list(ServiceDay.possible_staff(clinic)), **kwargs
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def new():
    form = _day_form(forms.PlanForm, today=local_today())
    if not form.places:
        flash(_("Add a place first: where is the service day held?"), "warning")
        return redirect(url_for("service_days.places"), code=303)
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("service_days/new.html", "service_days/_form.html", status=status, form=form)
    user = current_user._get_current_object()
    days = ServiceDay.plan(user, **form.day_data())
    flash(_("%(n)d service days planned as drafts.", n=len(days)) if len(days) > 1
          else _("Service day planned as a draft."), "success")  # fmt: skip
    return _back(days[0])


@bp.route("/<int:day_id>/edit", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def edit(day_id: int):
    day = _own(day_id)
    form = _day_form(forms.DayFields, obj=day)
    if request.method == "GET":
        form.place.data = day.place_id
        form.staff.data = [u.id for u in day.staff()]
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("service_days/edit.html", status=status, form=form, day=day)
    try:
        day.edit(current_user._get_current_object(), **form.day_data())
    except TransitionError as error:
        flash(error.message, "error")
    else:
        flash(_("Service day changed."), "success")
    return _back(day)


# ---- one day ------------------------------------------------------------------------------
def _detail(day: ServiceDay) -> dict:
    bookings = list(Booking.of_day(day))
    slots = list(Slot.of_day(day))
    by_slot: dict = {}
    for booking in bookings:
        by_slot.setdefault(booking.slot_id, []).append(booking)
    own = day.clinic_id == current_user.organisation_id
    return {
        "day": day,
        "slots": slots,
        "by_slot": by_slot,
        "bookings": bookings,
        "own": own,
        "moves": day.moves_for(current_user),
        "booking_moves": {b.id: b.moves_for(current_user) for b in bookings} if own else {},
        "today": local_today(),
    }


@bp.route("/<int:day_id>/history")
@roles_required(*STAFF_ROLES)
def history(day_id: int):
    """The day's timeline: loaded on its own, so the day page stays light."""
    day = _load(day_id)
    audit("view", "service_day", day.id, "timeline")
    return render(
        "service_days/history.html", "service_days/_timeline.html", day=day,
        events=list(day.timeline()), booking_events=list(BookingEvent.of_day(day)),
    )  # fmt: skip


@bp.route("/<int:day_id>/staff")
@roles_required(*STAFF_ROLES)
def staff(day_id: int):
    """Who staffs the day (names only: no patient data, so no audit row)."""
    day = _load(day_id)
    return render(
        "service_days/staff.html", "service_days/_staff.html", day=day, staff=list(day.staff())
    )


@bp.route("/<int:day_id>")
@roles_required(*STAFF_ROLES)
def show(day_id: int):
    day = _load(day_id)
    audit("view", "service_day", day.id)
    return render("service_days/show.html", "service_days/_day.html", **_detail(day))


@bp.route("/<int:day_id>/<slug>", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def move(day_id: int, slug: str):
    """A move of the day (publish, unpublish, complete, cancel: its form first)."""
    day = _own(day_id)
    chosen = day.workflow.by_slug(slug) or abort(404)
    form = forms.CancelForm() if chosen.form else forms.Form()
    if chosen.form and (request.method == "GET" or not form.validate_on_submit()):
        status = 422 if request.method == "POST" else 200
        return render("service_days/move.html", status=status, move=chosen, form=form, day=day)
    if request.method == "GET":
        return _back(day)
    make_move(day, chosen, form.move_data())
    return _back(day)


@bp.route("/slots/<int:slot_id>/capacity", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def capacity(slot_id: int):
    query = Slot.select(Slot, ServiceDay).join(ServiceDay).where(ServiceDay.clinic == _clinic_id())
    slot = get_visible_or_404(query, slot_id, "service_day")
    form = forms.CapacityForm()
    if not form.validate_on_submit():
        flash(" ".join(form.capacity.errors), "error")
    elif slot.set_capacity(current_user._get_current_object(), form.capacity.data):
        flash(_("Capacity changed."), "success")
    else:
        flash(_("Not below what is booked: %(n)d places are taken.", n=slot.booked), "error")
    return _back(slot.day)


# ---- booking ------------------------------------------------------------------------------
@bp.route("/<int:day_id>/book", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def book(day_id: int):
    """Book a registered patient (chosen here, or coming from their page with ?patient=ID)."""
    day = _own(day_id)
    if not request.values.get("patient"):
        return _choose_patient(day, walk_in=False)
    patient = _patient_of(day)
    slots = list(Slot.of_day(day))
    form = forms.BookingForm(slots=slots)
    user = current_user._get_current_object()
    if earlier := SubmissionKey.result_of(form.submission_key.data, user.id):
        return redirect(earlier, code=303)  # sent twice (a double click): the first result
    if request.method == "GET" and day.mode == "home":
        form.address.data = patient.address
    context = {"day": day, "patient": patient, "form": form}
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render("service_days/book.html", status=status, **context)
    try:
        url = SubmissionKey.once(
            form.submission_key.data, user, lambda: _book(user, day, patient, form)
        )
    except SlotFull as error:
        form.waitlist.data = True
        flash(error.message, "error")
        return render("service_days/book.html", status=422, full=True, **context)
    except TransitionError as error:
        flash(error.message, "error")
        return render("service_days/book.html", status=422, **context)
    trigger("counts-changed")
    return redirect(url, code=303)


def _book(user, day: ServiceDay, patient: Patient, form) -> str:
    booking = Booking.book(
        user, form.slots[form.slot.data], patient, today=local_today(),
        waitlist=form.waitlist.data, any_slot=form.any_slot.data, **form.home_data(),
    )  # fmt: skip
    waitlisted = booking.state == "waitlisted"
    flash(_("%(name)s is on the waitlist.", name=patient.display_name) if waitlisted
          else _("%(name)s is booked.", name=patient.display_name), "success")  # fmt: skip
    return url_for("service_days.show", day_id=day.id)


def _patient_of(day: ServiceDay) -> Patient:
    clinic_patients = Patient.select().where(Patient.clinic == day.clinic_id)
    return get_visible_or_404(clinic_patients, request.values.get("patient", ""), "patient")


@bp.route("/<int:day_id>/walk-in", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def walk_in(day_id: int):
    """A patient seen at the desk without a booking (chosen on the GET, added by the POST)."""
    day = _own(day_id)
    if request.method == "GET":
        return _choose_patient(day, walk_in=True)
    patient = _patient_of(day)
    try:
        Booking.add_walk_in(current_user._get_current_object(), day, patient)
    except TransitionError as error:
        flash(error.message, "error")
    else:
        flash(_("Walk-in added: %(name)s.", name=patient.display_name), "success")
    return _back(day)


def _choose_patient(day: ServiceDay, walk_in: bool):
    query = request.args.get("q", "").strip()[:60]
    patients = Patient.search(day.clinic_id, query) if query else []
    audit("list", "patient", None, "service day: choose patient")
    return render(
        "service_days/choose_patient.html", day=day, patients=patients, q=query, walk_in=walk_in
    )


@bp.route("/bookings/<int:booking_id>/<slug>", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def booking_move(booking_id: int, slug: str):
    """Attendance (one tap, undoable) and cancelling a booking (which promotes the waitlist)."""
    booking = _own_booking(booking_id)
    chosen = booking.workflow.by_slug(slug) or abort(404)
    user = current_user._get_current_object()
    try:
        promoted = getattr(booking, chosen.name)(user)
    except TransitionError as error:
        flash(error.message, "error")
    else:
        flash(chosen.done, "success")
        if promoted:
            flash(_("%(name)s moved up from the waitlist: call them.",
                    name=promoted.patient.display_name), "success")  # fmt: skip
        trigger("counts-changed")
    if wants_fragment() and chosen.name in ("attend", "no_show", "undo"):
        fresh = _own_booking(booking.id)
        return render(
            "service_days/show.html", "service_days/_booking.html",
            b=fresh, day=fresh.day, booking_moves={fresh.id: fresh.moves_for(user)}, own=True,
        )  # fmt: skip
    return _back(booking.day, f"#booking-{booking.id}")


@bp.route("/bookings/<int:booking_id>/called", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def called(booking_id: int):
    booking = _own_booking(booking_id)
    if booking.mark_called(current_user._get_current_object()):
        flash(_("Marked as called."), "success")
        trigger("counts-changed")
    return redirect(url_for("service_days.to_call"), code=303)


@bp.route("/bookings/<int:booking_id>/order/<direction>", methods=["POST"])
@roles_required(*CLINIC_STAFF)
def order(booking_id: int, direction: str):
    """Home visits: move a visit up or down the visiting order."""
    booking = _own_booking(booking_id)
    if direction not in ("up", "down"):
        abort(404)
    booking.shift(current_user._get_current_object(), -1 if direction == "up" else 1)
    return _back(booking.day, "#visits")


@bp.route("/to-call")
@roles_required(*CLINIC_STAFF)
def to_call():
    bookings = list(Booking.to_call_listing(current_user.organisation_id).limit(100))
    no_shows = list(Booking.no_shows(current_user.organisation_id).limit(50))
    audit("list", "service_booking", None, "to call")
    return render("service_days/to_call.html", bookings=bookings, no_shows=no_shows)


# ---- places -------------------------------------------------------------------------------
@bp.route("/places", methods=["GET", "POST"])
@roles_required(*CLINIC_STAFF)
def places():
    form = forms.PlaceForm()
    if form.validate_on_submit():
        Place.get_or_create(
            clinic=current_user.organisation_id, name=form.name.data.strip(),
            defaults={"address": form.address.data},
        )  # fmt: skip
        audit("create", "place", None, form.name.data)
        flash(_("Place added."), "success")
        return redirect(url_for("service_days.places"), code=303)
    status = 422 if request.method == "POST" else 200
    return render(
        "service_days/places.html", status=status, form=form,
        places=list(Place.of(current_user.organisation_id)),
    )  # fmt: skip


@bp.route("/<int:day_id>/fhir")
@roles_required(*STAFF_ROLES)
def fhir(day_id: int):
    from clinic.service_days.fhir import bundle

    day = _load(day_id)
    audit("export_fhir", "service_day", day.id)
    return fhir_response(bundle(day), f"service-day-{day.id}.json")


# ---- calendar feeds ----------------------------------------------------------------------
def _feed_kinds() -> list[str]:
    clinic_staff = current_user.organisation.is_clinic and current_user.has_role(*CLINIC_STAFF)
    return [CLINIC_FEED, STAFF_FEED] if clinic_staff else [STAFF_FEED]


@bp.route("/feeds")
@roles_required(*STAFF_ROLES)
def feeds():
    return _feeds_page()


def _feeds_page(new_kind: str | None = None, token: str | None = None):
    current = {kind: CalendarFeed.current(current_user, kind) for kind in _feed_kinds()}
    url = url_for("service_days.feed", token=token, _external=True) if token else None
    return render("service_days/feeds.html", feeds=current, new_kind=new_kind, new_url=url)


@bp.route("/feeds/<kind>", methods=["POST"])
@roles_required(*STAFF_ROLES)
def regenerate_feed(kind: str):
    """A new secret address (the old one stops working); shown once, on this answer."""
    if kind not in _feed_kinds():
        abort(404)
    token = CalendarFeed.regenerate(current_user._get_current_object(), kind)
    return _feeds_page(kind, token)


@bp.route("/feeds/<kind>/revoke", methods=["POST"])
@roles_required(*STAFF_ROLES)
def revoke_feed(kind: str):
    if kind not in _feed_kinds():
        abort(404)
    CalendarFeed.revoke(current_user, kind)
    audit("feed_revoked", "calendar_feed", None, kind)
    flash(_("The calendar address no longer works."), "success")
    return redirect(url_for("service_days.feeds"), code=303)


@bp.route("/feed/<token>.ics")
def feed(token: str):
    """The feed itself: no session, the secret token is the key; 304 when unchanged."""
    found = CalendarFeed.by_token(token) or abort(404)
    response = current_app.response_class(calendar_for(found), mimetype="text/calendar")
    response.add_etag()
    return response.make_conditional(request)


# ---- printable roster ---------------------------------------------------------------------
ROSTER_LABELS = {
    "roster": _l("Service day roster"),
    "date": _l("Date"),
    "place": _l("Place"),
    "theme": _l("Theme"),
    "staff": _l("Staff"),
    "slot": _l("Slot"),
    "order": _l("Visiting order"),
    "patient": _l("Patient"),
    "phone": _l("Phone"),
    "address": _l("Address"),
    "access_notes": _l("Access notes"),
    "carer": _l("Carer contact"),
    "state": _l("State"),
    "waitlist": _l("Waitlist"),
}


@bp.route("/<int:day_id>/roster")
@roles_required(*STAFF_ROLES)
def roster(day_id: int):
    day = _load(day_id)
    audit("print", "service_day", day.id, "roster")
    zh = "zh_Hans_CN" if str(current_user.language) == "zh_Hans_CN" else "zh_Hant_HK"
    labels = bilingual(ROSTER_LABELS | {"theme_value": THEMES[day.theme]}, zh)
    bookings = [b for b in Booking.of_day(day) if b.slot_id]  # in slot order, with the slot
    return render(
        "service_days/roster.html", labels=labels, zh=zh, day=day, bookings=bookings,
        staff=list(day.staff()),
    )  # fmt: skip


@bp.route("/patient/<int:patient_id>")
@roles_required(*CLINIC_STAFF)
def for_patient(patient_id: int):
    """A patient's bookings and the days to book them into (the patient page loads it)."""
    patient = get_visible_or_404(Patient.visible_to(current_user), patient_id, "patient")
    audit("list", "booking", None, f"patient {patient.id}")
    return render("service_days/patient.html", "service_days/_patient_days.html", patient=patient)
