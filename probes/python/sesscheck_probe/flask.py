"""Flask: `app.register_blueprint(sesscheck_probe.flask.blueprint())`.

Authenticated means Flask-Login's `current_user.is_authenticated` when Flask-Login is set up,
otherwise a `_user_id` in the session (what Flask-Login stores). Seconds left are known for a
permanent session (`session.permanent`): PERMANENT_SESSION_LIFETIME, renewed on each request.
"""
from flask import Blueprint, abort, current_app, jsonify, request, session

from .core import DEFAULT_PATH, TOKEN_HEADER, Decision, decide, payload


def _authenticated():
    login_manager = getattr(current_app, "login_manager", None)
    if login_manager is not None:
        from flask_login import current_user

        return current_user.is_authenticated
    return "_user_id" in session


def _backend():
    iface = current_app.session_interface
    return f"flask:{type(iface).__module__}.{type(iface).__name__}"


def blueprint(path=DEFAULT_PATH, name="sesscheck_probe"):
    bp = Blueprint(name, __name__)

    @bp.get(path)
    def probe():
        decision = decide(request.headers.get(TOKEN_HEADER))
        if decision is not Decision.ANSWER:
            abort(decision.value)
        left = None
        if session.permanent:
            left = current_app.permanent_session_lifetime.total_seconds()
        return jsonify(payload(_authenticated(), _backend(), left))

    return bp
