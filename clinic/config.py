"""Configuration from the environment, with safe defaults for a single clinic PC."""

import os
import secrets
from pathlib import Path


def secret_key(instance_path: Path) -> str:
    """A key generated once into instance/, for when SECRET_KEY is not set."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def from_environment(instance_path: Path) -> dict:
    """Settings read from the environment (see README, "Configuration")."""
    redis_url = os.environ.get("REDIS_URL")
    settings = {"SECRET_KEY": os.environ["SECRET_KEY"]} if os.environ.get("SECRET_KEY") else {}
    if os.environ.get("SECURE_COOKIES", "") == "1":
        # Sent over HTTPS only, for this host only, for every path: no sibling host can set it.
        settings |= {"SESSION_COOKIE_NAME": "__Host-clinic_session", "SESSION_COOKIE_PATH": "/"}
    return settings | {
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance_path / 'clinic.db'}"),
        "CLINIC_TIMEZONE": os.environ.get("CLINIC_TIMEZONE", "Asia/Hong_Kong"),
        "SESSION_IDLE_MINUTES": int(os.environ.get("SESSION_IDLE_MINUTES", "30")),
        "SESSION_MAX_HOURS": int(os.environ.get("SESSION_MAX_HOURS", "12")),
        "SESSION_COOKIE_SECURE": os.environ.get("SECURE_COOKIES", "") == "1",
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        # How many reverse proxies stand in front (their X-Forwarded-For/-Proto are trusted).
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
    }


DEFAULTS = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "clinic_session",
    # Request size limits: forms here are small; nothing is uploaded.
    "MAX_CONTENT_LENGTH": 512 * 1024,
    "MAX_FORM_MEMORY_SIZE": 256 * 1024,
    "MAX_FORM_PARTS": 200,
    # A reception screen stays open all day: the token lives as long as the session.
    "WTF_CSRF_TIME_LIMIT": None,
    "WTF_CSRF_HEADERS": ["X-CSRFToken"],
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent.parent / "translations"),
    # Failed logins only (a success never counts): per account, and per address for shared NAT.
    "LOGIN_ACCOUNT_LIMIT": "10 per 15 minutes",
    "LOGIN_ADDRESS_LIMIT": "100 per 15 minutes",
    "RATELIMIT_KEY_PREFIX": "clinic-login",
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_MIN_SIZE": 300,
    "COMPRESS_MIMETYPES": [
        "text/html",
        "text/css",
        "text/javascript",  # static/*.js (Python's mimetypes)
        "application/javascript",  # htmx
        "application/json",
        "application/fhir+json",
        "image/svg+xml",
        "text/calendar",
    ],
    "SEND_FILE_MAX_AGE_DEFAULT": 0,
    "PASSWORD_HASH_METHOD": "scrypt",
    # Referrals: response targets per priority (hours); hub access to a patient after closing.
    "REFERRAL_TARGET_HOURS": {"green": 2, "urgent": 24, "routine": 72},
    "HUB_ACCESS_DAYS_AFTER_CLOSE": 30,
    "REFERRAL_POLL_SECONDS": 20,
    # Drug consultations: the hub's deadline per urgency (same day: this local time, or the
    # minimum hours when that is later); whether a second pharmacist checks every answer
    # (True, False, or a list of hub names).
    "CONSULTATION_DUE": {
        "immediate_hours": 1,
        "same_day_until": "18:00",
        "same_day_min_hours": 4,
        "routine_days": 3,
    },
    "CONSULTATION_SECOND_CHECK": True,
}
