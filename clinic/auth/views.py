"""Log in, log out, switch language. Sessions live in the database: logout is immediate."""

import datetime as dt
from urllib.parse import urlsplit

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
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from werkzeug.exceptions import HTTPException

from clinic.auth.access import audit
from clinic.auth.forms import LoginForm
from clinic.htmx import render
from clinic.models import LANGUAGES, PendingSubmission, User, UserSession
from clinic.security import limiter

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
    target = url_for("auth.login", next=back)
    if request.headers.get("HX-Request"):
        # A region asked for alone must not show the login page inside itself.
        return "", 401, {"HX-Redirect": target}
    if not ended:
        flash(login_manager.login_message, "info")
    return redirect(target)


def _has_page(path: str) -> bool:
    """Whether this URL can be opened (GET), so that logging in can come back to it."""
    try:
        current_app.url_map.bind("").match(path, method="GET")
    except HTTPException:
        return False
    return True


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never another host, never a scheme."""
    if not target:
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


def _limit_login() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_limit_login, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("today.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render("auth/login.html", form=form, status=422 if form.errors else 200)
    user = User.authenticate(form.email.data, form.password.data)
    if user is None:
        audit("login_failed", "user", detail=form.email.data.strip().lower()[:254])
        form.password.errors.append(_("Email or password is not right."))
        return render("auth/login.html", form=form, status=422)
    _start_session(user)
    audit("login", "user", user.id)
    back = safe_next(form.next.data)
    if back and PendingSubmission.waiting(user.id, urlsplit(back).path):
        session["restore"] = urlsplit(back).path  # a flag only: the data stays on the server
    return redirect(back or url_for("today.index"), code=303)


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
