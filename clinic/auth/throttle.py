"""Login protection: failed attempts only, per account and per address; a success never counts.

Counters live in Redis when REDIS_URL is set, so every worker and server sees them. When Redis
cannot be reached the counts go on in this process's memory (a warning is logged): logins keep
working, and guessing stays limited.
"""

import datetime as dt
import logging
import time

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 60


class LoginThrottle:
    def __init__(self, storage_uri: str, account_limit: str, address_limit: str, prefix: str):
        self.account_limit = parse(account_limit)
        self.address_limit = parse(address_limit)
        self.prefix = prefix
        self.shared = None
        if not storage_uri.startswith("memory://"):
            storage = storage_from_string(
                storage_uri, socket_connect_timeout=0.5, socket_timeout=0.5
            )
            self.shared = MovingWindowRateLimiter(storage)
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self._warned_at = 0.0

    def _keys(self, email: str, address: str | None):
        yield self.account_limit, "account", email.strip().lower()
        yield self.address_limit, "address", address or "unknown"

    def _call(self, method: str, item: RateLimitItem, *key: str):
        if self.shared is not None:
            try:
                return getattr(self.shared, method)(item, self.prefix, *key)
            except RedisError as error:
                self._warn(error)
        return getattr(self.local, method)(item, self.prefix, *key)

    def _warn(self, error: Exception) -> None:
        if time.monotonic() - self._warned_at > WARN_EVERY_SECONDS:
            self._warned_at = time.monotonic()
            log.warning("Redis unreachable (%s): login limits counted per process", error)

    def locked_until(self, email: str, address: str | None) -> tuple[str, dt.datetime] | None:
        """("account" or "address", when it opens again) if too many attempts failed."""
        for item, scope, key in self._keys(email, address):
            if not self._call("test", item, scope, key):
                reset = self._call("get_window_stats", item, scope, key).reset_time
                return scope, dt.datetime.fromtimestamp(reset, dt.UTC)
        return None

    def failed(self, email: str, address: str | None) -> None:
        for item, scope, key in self._keys(email, address):
            self._call("hit", item, scope, key)


def throttle() -> LoginThrottle:
    return current_app.extensions["login_throttle"]


def init_app(app: Flask) -> None:
    config = app.config
    app.extensions["login_throttle"] = LoginThrottle(
        config["RATELIMIT_STORAGE_URI"],
        config["LOGIN_ACCOUNT_LIMIT"],
        config["LOGIN_ADDRESS_LIMIT"],
        config["RATELIMIT_KEY_PREFIX"],
    )
