"""The one password rule, for every place a password is set (CLI, administration, resets)."""

from flask_babel import LazyString
from zxcvbn import zxcvbn

from clinic.translation import lazy_gettext as _l

MIN_LENGTH = 12
MAX_LENGTH = 200
MIN_DIFFERENT = 4  # "aaaaaaaaaaaa" or "abababababab" is a run, not a password
MIN_SCORE = 3  # zxcvbn's 0-4 estimate; below 3 is a common password or a simple pattern


def password_problem(password: str, email: str = "") -> LazyString | None:
    """Why this password may not be used (in the reader's language), or None if it may.

    At least 12 characters; not a run of one or two characters; not the user's e-mail or its
    parts; not a common password or a simple variation of one (zxcvbn's dictionaries).
    """
    if len(password) < MIN_LENGTH:
        return _l("Use at least %(n)d characters.", n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _l("Use at most %(n)d characters.", n=MAX_LENGTH)
    if len(set(password)) < MIN_DIFFERENT:
        return _l("Use more different characters, not one repeated.")
    email = (email or "").strip().lower()
    local, _, domain = email.partition("@")
    if email and (email in password.lower() or (len(local) >= 4 and local in password.lower())):
        return _l("Do not use your e-mail address in the password.")
    if zxcvbn(password, user_inputs=[p for p in (email, local, domain) if p])["score"] < MIN_SCORE:
        return _l("This password is too common or too easy to guess.")
    return None
