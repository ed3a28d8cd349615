"""Security baseline: CSRF, login limits, compression and the headers every response carries."""

from flask import Flask, Response, request
from flask_compress import Compress
from flask_wtf.csrf import CSRFProtect

from clinic.auth import throttle


class AnyStatusCompress(Compress):
    """Flask-Compress leaves every non-2xx response alone; a 422 form or a 404 page is
    as large as a page and crosses the same slow link, so it is compressed too."""

    def after_request(self, response: Response) -> Response:
        status = response.status_code
        if status < 400:
            return super().after_request(response)
        response.status_code = 200
        try:
            return super().after_request(response)
        finally:
            response.status_code = status


csrf = CSRFProtect()
compress = AnyStatusCompress()

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _security_headers(response):
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), browsing-topics=()"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if not response.cache_control.public:
        # Pages may show patient data: never kept by the browser or a proxy.
        response.cache_control.no_store = True
    return response


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    throttle.init_app(app)
    compress.init_app(app)
    app.after_request(_security_headers)
