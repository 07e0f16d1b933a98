"""Settings for the sesscheck Django target, driven by environment variables.

SESS_VARIANT  db (default) | db-save-every | locmem
DJANGO_DB     path of the SQLite file (default: ./db.sqlite3 next to manage.py)
SLOW_MS       extra time spent in /dashboard, in ms (default 50)
SECRET_KEY    fixed default so every worker and every restart agree
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "sesscheck-django-fixed-secret-key-not-for-production-0123456789")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

SESS_VARIANT = os.environ.get("SESS_VARIANT", "db")
if SESS_VARIANT not in ("db", "db-save-every", "locmem"):
    raise RuntimeError(f"unknown SESS_VARIANT={SESS_VARIANT!r}")
SLOW_MS = int(os.environ.get("SLOW_MS", "50") or 0)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

# The drop-in probe (probes/python), when installed: off unless SESSCHECK_PROBE=1.
try:
    import sesscheck_probe.django  # noqa: F401

    MIDDLEWARE.append("sesscheck_probe.django.ProbeMiddleware")
except ImportError:
    pass

ROOT_URLCONF = "sessproj.urls"
WSGI_APPLICATION = "sessproj.wsgi.application"
APPEND_SLASH = False

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or str(BASE_DIR / "db.sqlite3"),
        "OPTIONS": {
            # Several Gunicorn workers write the same file: wait for locks
            # instead of failing with "database is locked".
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

if SESS_VARIANT == "locmem":
    # BUG TARGET: the cache lives in each worker's memory.
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "sesscheck-sessions",
        }
    }
else:
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_SAVE_EVERY_REQUEST = SESS_VARIANT == "db-save-every"
SESSION_COOKIE_NAME = "sessionid"
CSRF_COOKIE_NAME = "csrftoken"

LOGIN_URL = "/login"
USE_TZ = True
TEMPLATES = []
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # SessionInterrupted is logged here as a 400 warning.
        "django.request": {"handlers": ["console"], "level": "WARNING"},
        "django.security": {"handlers": ["console"], "level": "WARNING"},
    },
}
