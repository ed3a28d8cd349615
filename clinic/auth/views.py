"""Log in, log out, switch language. Sessions live in the database: logout is immediate."""

import datetime as dt
import time
from urllib.parse import urlsplit

import segno
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime, refresh
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from clinic.auth.access import audit
from clinic.auth.forms import CodeForm, LoginForm, PasswordChangeForm
from clinic.auth.throttle import throttle
from clinic.db import db
from clinic.htmx import render
from clinic.inputs import has_control_characters
from clinic.models import LANGUAGES, PendingSubmission, User, UserSession, mfa
from clinic.models.mfa import RecoveryCode, TrustedDevice
from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please log in to continue.")
login_manager.login_message_category = "info"

# Polling requests (queue, counts) carry this header and do not keep an idle session alive.
POLL_HEADER = "X-Clinic-Poll"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    token = session.get("sid")
    if not token:
        return None
    config = current_app.config
    record = UserSession.live(
        token,
        idle=dt.timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        lifetime=dt.timedelta(hours=config["SESSION_MAX_HOURS"]),
    )
    if record is None or str(record.user_id) != user_id:
        return None
    user = record.user
    if not user.active or user.organisation_id != record.organisation_id:
        record.end()
        return None
    if POLL_HEADER not in request.headers:
        record.touch()
    g.user_session = record
    return user


@login_manager.unauthorized_handler
def unauthorized():
    back = request.full_path.rstrip("?") if _has_page(request.path) else None
    ended = UserSession.ended(session.pop("sid")) if session.get("sid") else None
    if ended:
        flash(_("You were logged out after a time without activity. Log in again to carry on."),
              "warning")  # fmt: skip
        if request.method == "POST" and back:
            # What they were sending is kept on the server, for them alone, until they are back.
            fields = [(k, v) for k, v in request.form.items(multi=True) if k != "csrf_token"]
            PendingSubmission.keep(ended.user_id, request.path, fields)
        elif request.method == "POST" and (back := _page_sent_from()):
            # A button with no form of its own (a queue move): back to its page, not done.
            flash(_("What you pressed was not done. After logging in, check the page and "
                    "press it again."), "warning")  # fmt: skip
    target = url_for("auth.login", next=back)
    if request.headers.get("HX-Request"):
        # A region asked for alone must not show the login page inside itself.
        return "", 401, {"HX-Redirect": target}
    if not ended:
        flash(login_manager.login_message, "info")
    return redirect(target)


def _page_sent_from() -> str | None:
    """The page of this site a request was sent from (htmx names it; a browser's Referer)."""
    source = request.headers.get("HX-Current-URL") or request.referrer
    if not source:
        return None
    parts = urlsplit(source)
    if parts.netloc and parts.netloc != request.host:
        return None
    page = parts.path + (f"?{parts.query}" if parts.query else "")
    return page if safe_next(page) and _has_page(parts.path) else None


def _has_page(path: str) -> bool:
    """Whether this URL can be opened (GET), so that logging in can come back to it."""
    try:
        current_app.url_map.bind("").match(path, method="GET")
    except HTTPException:
        return False
    return True


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never another host, never a scheme."""
    if not target or has_control_characters(target, one_line=True) or " " in target:
        return None
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
    ):
        return None
    return target


PENDING_MINUTES = 5
DEVICE_COOKIE = "clinic_device"


def _locked_response(form: LoginForm, email: str):
    """The login refused while too many attempts have failed; says when to try again."""
    lock = throttle().locked_until(email, request.remote_addr)
    if lock is None:
        return None
    scope, until = lock
    audit("login_locked", "user", detail=f"{scope}: {email}"[:254])
    when = format_datetime(until, "HH:mm")
    if scope == "account":
        message = _(
            "Too many attempts failed for this account. Try again after %(time)s.", time=when
        )
    else:
        message = _(
            "Too many attempts failed from this network. Try again after %(time)s.", time=when
        )
    form.form_errors.append(message)
    return render("auth/login.html", form=form, status=429)


def _failed(email: str) -> None:
    throttle().failed(email, request.remote_addr)
    audit("login_failed", "user", detail=email[:254])


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("today.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render("auth/login.html", form=form, status=422 if form.errors else 200)
    email = form.email.data.strip().lower()
    if locked := _locked_response(form, email):
        return locked
    user = User.authenticate(email, form.password.data)
    if user is None:
        _failed(email)
        form.password.errors.append(_("Email or password is not right."))
        return render("auth/login.html", form=form, status=422)
    next_url = safe_next(form.next.data)
    if not (user.needs_second_factor or user.has_second_factor):
        return _complete_login(user, next_url)
    if user.has_second_factor and TrustedDevice.recognises(
        user, request.cookies.get(DEVICE_COOKIE)
    ):
        return _complete_login(user, next_url)
    session["pending"] = {"user": user.id, "at": time.time(), "next": next_url}
    step = "auth.verify" if user.has_second_factor else "auth.enrol"
    return redirect(url_for(step), code=303)


def _pending_user() -> User | None:
    """The user who gave the right password a moment ago and still owes the second factor."""
    pending = session.get("pending")
    if not pending or time.time() - pending["at"] > PENDING_MINUTES * 60:
        return None
    return User.get_or_none(User.id == pending["user"], User.active == True)  # noqa: E712


def _complete_login(user: User, next_url: str | None):
    _start_session(user)
    audit("login", "user", user.id)
    if user.must_change_password:
        return redirect(url_for("auth.change_password", next=next_url), code=303)
    if next_url and PendingSubmission.waiting(user.id, urlsplit(next_url).path):
        session["restore"] = urlsplit(next_url).path  # a flag only: the data stays on the server
    return redirect(next_url or url_for("today.index"), code=303)


@bp.route("/login/code", methods=["GET", "POST"])
def verify():
    user = _pending_user()
    if user is None or not user.has_second_factor:
        return redirect(url_for("auth.login"), code=303)
    form = CodeForm()
    if not form.validate_on_submit():
        return render("auth/verify.html", form=form, status=422 if form.errors else 200)
    if locked := _locked_response(LoginForm(), user.email):
        return locked
    code = form.code.data
    if mfa.accept_code(user, code):
        used = "totp"
    elif RecoveryCode.use(user, code):
        used = "recovery_code"
    else:
        _failed(user.email)
        form.code.errors.append(_("That code is not right. Try the newest code."))
        return render("auth/verify.html", form=form, status=422)
    response = _complete_login(user, session.get("pending", {}).get("next"))
    audit("second_factor", "user", user.id, used)
    if form.remember.data:
        response.set_cookie(
            DEVICE_COOKIE,
            TrustedDevice.remember(user),
            max_age=mfa.DEVICE_DAYS * 86400,
            path=url_for("auth.login"),
            httponly=True,
            samesite="Lax",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    """Set up the second factor during the login it is required for."""
    user = _pending_user()
    if user is None or user.has_second_factor:
        return redirect(url_for("auth.login"), code=303)
    pending = session["pending"]
    return _enrolment(user, pending, lambda: _complete_login(user, pending.get("next")).location)


@bp.route("/password/two-step", methods=["GET", "POST"])
@login_required
def set_up_second_factor():
    """Clinic staff whose clinic does not require it may still choose a second step."""
    if current_user.has_second_factor:
        return redirect(url_for("auth.change_password"), code=303)
    user = current_user._get_current_object()
    return _enrolment(user, session.setdefault("enrolling", {}), lambda: url_for("today.index"))


def _enrolment(user: User, state: dict, finish):
    """Scan the QR code (or type the key), confirm with a code; then the recovery codes, once.

    `state` keeps the new secret between the two requests; `finish()` completes whatever
    comes next and returns where "continue" goes.
    """
    secret = state.setdefault("secret", mfa.new_secret())
    session.modified = True
    form = CodeForm()
    if form.validate_on_submit():
        step = mfa.matching_step(secret, form.code.data)
        if step is not None:
            onward = finish()
            with db.atomic():
                codes = mfa.enrol(user, secret, step)
                audit("mfa_enrolled", "user", user.id)
            session.pop("enrolling", None)
            # Shown once, in this answer only.
            return render("auth/recovery_codes.html", codes=codes, next=onward)
        _failed(user.email)
        form.code.errors.append(_("That code is not right. Try the newest code."))
    return render(
        "auth/enrol.html",
        form=form,
        secret=secret,
        qr_svg=_qr_svg(mfa.provisioning_uri(secret, user.email)),
        status=422 if form.errors else 200,
    )


def _qr_svg(text: str) -> Markup:
    """The QR code as inline SVG (the CSP allows no script, and needs no image request)."""
    qr = segno.make(text, error="m")
    svg = qr.svg_inline(scale=4, title=_("QR code for your authenticator app"))
    return Markup(svg)  # noqa: S704 (segno's own markup; the title is escaped by segno)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = PasswordChangeForm(email=current_user.email)
    if form.validate_on_submit():
        if User.authenticate(current_user.email, form.current.data):
            current_user.change_password(form.new.data)
            audit("password_changed", "user", current_user.id)
            flash(_("Your password is changed."), "success")
            return redirect(safe_next(request.args.get("next")) or url_for("today.index"), code=303)
        form.current.errors.append(_("Email or password is not right."))
    return render("auth/password.html", form=form, status=422 if form.errors else 200)


def _start_session(user: User) -> None:
    """A fresh session id at every login (no fixation), recorded on the server."""
    language = session.get("lang")
    session.clear()
    session["sid"] = UserSession.start(user, request.remote_addr, request.user_agent.string)
    if language and language != user.language:
        # A language picked on the login page just now is the latest explicit choice.
        user.language = language
        user.save(only=[User.language])
    login_user(user)


OPEN_WITH_TEMPORARY_PASSWORD = {
    "auth.change_password",
    "auth.logout",
    "auth.set_language",
    "static",
}


@bp.before_app_request
def temporary_password_must_change():
    """Someone logged in with a temporary password goes nowhere before choosing their own."""
    if request.endpoint in OPEN_WITH_TEMPORARY_PASSWORD or request.endpoint is None:
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        return redirect(url_for("auth.change_password"), code=303)
    return None


@bp.route("/keepalive", methods=["POST"])
@login_required
def keepalive():
    """ "Stay logged in": one small request that counts as activity."""
    g.user_session.touch(now_please=True)
    return "", 204


@bp.app_context_processor
def idle_warning() -> dict:
    """When the page warns that the session is about to time out (seconds from page load).

    The server records activity at most once a minute, so the page counts a minute short.
    """
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    seconds = max(idle - 60, idle * 0.8)
    return {"idle_seconds": int(seconds), "idle_warn_seconds": int(min(300, seconds / 2))}


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    audit("logout", "user", current_user.id)
    g.user_session.end()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/language", methods=["POST"])
def set_language():
    language = request.form.get("lang", "")
    if language not in LANGUAGES:
        abort(400)
    session["lang"] = language
    if current_user.is_authenticated:
        current_user.language = language
        current_user.save(only=[User.language])
    refresh()
    back = safe_next(request.form.get("next")) or url_for("today.index")
    return redirect(back, code=303)
