"""Static files: fingerprinted URLs, cached for a year, compressed once; htmx served from its
installed package."""

import gzip
import hashlib
from functools import cache, lru_cache
from pathlib import Path

import brotli
import js_lib_htmx
from flask import Flask, current_app, request, send_from_directory, url_for

HTMX_DIR = Path(js_lib_htmx.__file__).parent / "static" / "htmx"
YEAR = 365 * 24 * 3600


@cache
def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """The URL of a file under static/, with its content hash so it can be cached for a year."""
    return _built_once(("static", filename), lambda: Path(current_app.static_folder) / filename)


def htmx_url() -> str:
    return _built_once(("htmx_js", None), lambda: HTMX_DIR / "htmx.min.js")


def _built_once(target: tuple[str, str | None], path) -> str:
    """The fingerprinted URL, built on the first page under this script root, then remembered:
    every page asks for the same three."""
    urls = current_app.extensions.setdefault("static_urls", {})
    key = (request.script_root, *target)
    if key not in urls:
        endpoint, filename = target
        names = {"filename": filename} if filename else {}
        urls[key] = url_for(endpoint, **names, v=_fingerprint(path()))
    return urls[key]


def _htmx_js():
    return send_from_directory(HTMX_DIR, "htmx.min.js", mimetype="application/javascript")


COMPRESSORS = {"br": brotli.compress, "gzip": lambda data: gzip.compress(data, 9, mtime=0)}
COMPRESSIBLE = ("text/css", "application/javascript", "text/javascript", "image/svg+xml")


@lru_cache(maxsize=64)
def _compressed(data: bytes, encoding: str) -> bytes:
    """Each file is compressed once per process and encoding, at the highest level."""
    return COMPRESSORS[encoding](data)


def _cache_fingerprinted(response):
    if request.endpoint not in ("static", "htmx_js"):
        return response
    if "v" in request.args:
        # Fingerprinted: the URL changes with the content, so nothing needs revalidating.
        response.cache_control.no_cache = None
        response.cache_control.public = True
        response.cache_control.max_age = YEAR
        response.cache_control.immutable = True
    if response.status_code == 200 and response.mimetype in COMPRESSIBLE:
        _send_precompressed(response)
    return response


def _send_precompressed(response) -> None:
    accepted = request.accept_encodings
    encoding = next((e for e in COMPRESSORS if accepted[e]), None)
    response.vary.add("Accept-Encoding")
    if encoding is None:
        return
    response.direct_passthrough = False
    response.set_data(_compressed(response.get_data(), encoding))
    response.headers["Content-Encoding"] = encoding


def init_app(app: Flask) -> None:
    app.add_url_rule("/static/vendor/htmx.min.js", "htmx_js", _htmx_js)
    app.after_request(_cache_fingerprinted)
    app.jinja_env.globals.update(static_url=static_url, htmx_url=htmx_url)
