"""Framework-independent parts: the on/off switch, the token check and the JSON body."""
import enum
import hmac
import os
import socket

DEFAULT_PATH = "/sesscheck/probe"
TOKEN_HEADER = "X-Sesscheck-Token"
_TRUE = {"1", "true", "yes", "on"}


class Decision(enum.Enum):
    """What a request to the probe path gets."""

    ANSWER = 200
    # Disabled: indistinguishable from a path the app does not have.
    HIDDEN = 404
    # Enabled with a token, and the request did not carry it.
    FORBIDDEN = 403


def probe_enabled():
    # Read at every request (not at import) so a deployment can switch it without a rebuild,
    # and tests can run the same app both ways.
    return os.environ.get("SESSCHECK_PROBE", "").strip().lower() in _TRUE


def decide(sent_token):
    """`sent_token`: the X-Sesscheck-Token header's value, or None."""
    if not probe_enabled():
        return Decision.HIDDEN
    want = os.environ.get("SESSCHECK_PROBE_TOKEN", "")
    if want:
        # Constant-time comparison: the token guards a debug endpoint.
        if sent_token is None or not hmac.compare_digest(sent_token.encode(), want.encode()):
            return Decision.FORBIDDEN
    return Decision.ANSWER


def worker_host():
    return os.environ.get("SESSCHECK_WORKER_HOST") or socket.gethostname()


def payload(authenticated, session_backend, seconds_left=None):
    host, pid = worker_host(), os.getpid()
    body = {
        "worker": {"host": host, "pid": pid, "id": f"{host}:{pid}"},
        "authenticated": bool(authenticated),
        "session_backend": session_backend,
    }
    if seconds_left is not None:
        body["session_seconds_left"] = float(seconds_left)
    return body
