"""The second factor: a TOTP secret (RFC 6238), one-time recovery codes, remembered devices."""

import datetime as dt
import hashlib
import hmac
import secrets

import pyotp
from peewee import CharField, DateTimeField, ForeignKeyField

from clinic.db import db, utcnow
from clinic.models.core import BaseModel, User

ISSUER = "Clinic"
RECOVERY_CODES = 10
DEVICE_DAYS = 30


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """What an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(secret: str, code: str) -> int | None:
    """The time step whose six-digit code this is, allowing one step of clock drift either way."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(dt.datetime.now(dt.UTC))
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def accept_code(user: User, code: str) -> bool:
    """A right code not used before (RFC 6238 5.2): compare-and-set on the last step used."""
    step = matching_step(user.totp_secret, code)
    if step is None:
        return False
    unused = User.totp_last_step.is_null() | (User.totp_last_step < step)
    return User.update(totp_last_step=step).where(User.id == user.id, unused).execute() == 1


class RecoveryCode(BaseModel):
    """One of ten codes shown once at enrolment; only its hash is kept; each works once."""

    user = ForeignKeyField(User, backref="recovery_codes", on_delete="CASCADE")
    code_hash = CharField(unique=True)
    used_at = DateTimeField(null=True)

    @staticmethod
    def normalise(code: str) -> str:
        return "".join(code.split()).replace("-", "").lower()

    @classmethod
    def issue(cls, user: User) -> list[str]:
        codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
        cls.delete().where(cls.user == user).execute()
        cls.insert_many([{"user": user, "code_hash": _digest(code)} for code in codes]).execute()
        return [f"{code[:5]}-{code[5:]}" for code in codes]

    @classmethod
    def use(cls, user: User, code: str) -> bool:
        """Spend one unused code of this user (compare-and-set: never twice)."""
        spent = cls.update(used_at=utcnow()).where(
            cls.user == user,
            cls.code_hash == _digest(cls.normalise(code)),
            cls.used_at.is_null(),
        )
        return spent.execute() == 1


class TrustedDevice(BaseModel):
    """A computer the user asked to remember (off by default): no code asked there for a while."""

    user = ForeignKeyField(User, backref="trusted_devices", on_delete="CASCADE")
    token_hash = CharField(unique=True)
    expires_at = DateTimeField()

    @classmethod
    def remember(cls, user: User) -> str:
        token = secrets.token_urlsafe(32)
        expires = utcnow() + dt.timedelta(days=DEVICE_DAYS)
        cls.create(user=user, token_hash=_digest(token), expires_at=expires)
        return token

    @classmethod
    def recognises(cls, user: User, token: str | None) -> bool:
        if not token:
            return False
        query = cls.select().where(
            cls.user == user, cls.token_hash == _digest(token), cls.expires_at > utcnow()
        )
        return query.exists()


def enrol(user: User, secret: str, step: int) -> list[str]:
    """Keep the secret confirmed by the code of `step`; returns the recovery codes, shown once."""
    with db.atomic():
        User.update(totp_secret=secret, totp_last_step=step).where(User.id == user.id).execute()
        user.totp_secret = secret
        return RecoveryCode.issue(user)


def reset(user: User) -> None:
    """An administrator's reset: the user enrols again at the next login."""
    with db.atomic():
        User.update(totp_secret=None, totp_last_step=None).where(User.id == user.id).execute()
        user.totp_secret = None
        RecoveryCode.delete().where(RecoveryCode.user == user).execute()
        TrustedDevice.delete().where(TrustedDevice.user == user).execute()


MFA_MODELS = [RecoveryCode, TrustedDevice]
