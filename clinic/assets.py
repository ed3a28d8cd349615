"""Static files: fingerprinted URLs, cached for a year; htmx served from its installed package."""

import hashlib
from functools import cache
from pathlib import Path

import js_lib_htmx
from flask import Flask, current_app, request, send_from_directory, url_for

HTMX_DIR = Path(js_lib_htmx.__file__).parent / "static" / "htmx"
YEAR = 365 * 24 * 3600


@cache
def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """The URL of a file under static/, with its content hash so it can be cached for a year."""
    path = Path(current_app.static_folder) / filename
    return url_for("static", filename=filename, v=_fingerprint(path))


def htmx_url() -> str:
    return url_for("htmx_js", v=_fingerprint(HTMX_DIR / "htmx.min.js"))


def _htmx_js():
    return send_from_directory(HTMX_DIR, "htmx.min.js", mimetype="application/javascript")


def _cache_fingerprinted(response):
    if request.endpoint in ("static", "htmx_js") and "v" in request.args:
        response.cache_control.public = True
        response.cache_control.max_age = YEAR
        response.cache_control.immutable = True
    return response


def init_app(app: Flask) -> None:
    app.add_url_rule("/static/vendor/htmx.min.js", "htmx_js", _htmx_js)
    app.after_request(_cache_fingerprinted)
    app.jinja_env.globals.update(static_url=static_url, htmx_url=htmx_url)
