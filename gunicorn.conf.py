"""gunicorn settings.

SQLite (the default DATABASE_URL): ONE worker process with threads. SQLite before 3.51.3 can
corrupt a WAL database when several processes write at once, so never raise `workers` on SQLite.
PostgreSQL (DATABASE_URL=postgresql://...): as many workers as you like, on as many servers as
you like, but only with REDIS_URL: login limits must be counted where every worker sees them.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
_redis = bool(os.environ.get("REDIS_URL"))
workers = int(
    os.environ.get(
        "WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 if _postgres and _redis else 1
    )
)
if not _postgres and workers > 1:
    raise SystemExit("SQLite runs in one gunicorn worker (with threads); use PostgreSQL for more.")
if not _redis and workers > 1:
    raise SystemExit(
        "More than one worker needs REDIS_URL: without it each worker counts failed logins "
        "on its own, and guessing passwords gets that many times the limit."
    )
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = 30
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
