"""A polling single-page app behind Flask-Login, for sesscheck's [browser] checks.

GET /app shows a spinner and polls GET /api/session every 200 ms until it answers 200, then
shows the user's name. /api/session answers 401 (no redirect, no cookie change) to an
anonymous visitor, and the page retries forever: the "infinite loading" of a lost session.

SPA_STORE chooses where sessions live:
  process  server-side sessions in this process's memory (the bug): a restart loses them,
           the browser keeps its cookie, and the page spins forever after the restart.
  shared   Flask's signed-cookie sessions with a fixed SECRET_KEY: the session survives the
           restart and the page loads again.
Run with one worker: `gunicorn -w 1 app:app` (per-process memory is per worker).
"""
import os
import secrets
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from flask import jsonify  # noqa: E402
from flask.sessions import SessionInterface, SessionMixin  # noqa: E402
from flask_login import current_user  # noqa: E402
from werkzeug.datastructures import CallbackDict  # noqa: E402

from flask_common import make_app  # noqa: E402

STORE_KIND = os.environ.get("SPA_STORE", "shared")
PROCESS_SESSIONS = {}  # sid -> dict; gone when the process exits


class ProcessSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid=None):
        def on_update(s):
            s.modified = True

        CallbackDict.__init__(self, initial, on_update)
        self.sid = sid
        self.modified = False


class ProcessSessionInterface(SessionInterface):
    def open_session(self, app, request):
        sid = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        if sid and sid in PROCESS_SESSIONS:
            return ProcessSession(PROCESS_SESSIONS[sid], sid)
        # An unknown cookie (from before a restart) is left as it is: nothing tells the
        # browser to drop it.
        return ProcessSession(sid=secrets.token_urlsafe(24))

    def save_session(self, app, session, response):
        name = app.config["SESSION_COOKIE_NAME"]
        if not session:
            if session.modified:
                PROCESS_SESSIONS.pop(session.sid, None)
                response.delete_cookie(name, path="/")
            return
        if session.modified:
            PROCESS_SESSIONS[session.sid] = dict(session)
            response.set_cookie(name, session.sid, httponly=True, samesite="Lax", path="/")


def configure(app):
    app.config["SECRET_KEY"] = "sesscheck-flask-spa-fixed-test-key"
    if STORE_KIND == "process":
        app.session_interface = ProcessSessionInterface()


app = make_app(f"flask-spa:{STORE_KIND}", configure)

SPA_PAGE = open(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.html"), encoding="utf-8"
).read()


@app.get("/app")
def spa():
    return SPA_PAGE


@app.get("/api/session")
def api_session():
    if current_user.is_authenticated:
        return jsonify(username=current_user.username)
    return jsonify(error="not authenticated"), 401
