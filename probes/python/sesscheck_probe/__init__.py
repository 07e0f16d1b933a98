"""Drop-in probe endpoints for sesscheck.

The probe answers, for the request it serves, which worker answered and whether the request's
session is authenticated:

    {"worker": {"host": "web-2", "pid": 17, "id": "web-2:17"},
     "authenticated": true, "session_backend": "django.contrib.sessions.backends.db",
     "session_seconds_left": 1209599.0}

It is OFF unless the environment variable SESSCHECK_PROBE is "1" (or "true"/"yes"/"on"): a
disabled probe answers 404 like any unknown path, so it is safe to leave installed. When
SESSCHECK_PROBE_TOKEN is set, a request must carry it in the X-Sesscheck-Token header or it
gets 403. SESSCHECK_WORKER_HOST overrides the host name reported (default: the machine's
host name), for replicas that share one.
"""
from .core import (  # noqa: F401
    DEFAULT_PATH,
    TOKEN_HEADER,
    Decision,
    decide,
    payload,
    probe_enabled,
)

__all__ = ["DEFAULT_PATH", "TOKEN_HEADER", "Decision", "decide", "payload", "probe_enabled"]
