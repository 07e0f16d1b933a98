"""Shared Flask + Flask-Login application shape for the sesscheck targets.

Each target directory has an ``app.py`` that calls :func:`make_app` with a
``configure`` hook choosing the session backend.  Routes:

  GET  /login          HTML form (username, password, hidden csrf_token)
  POST /login          password "demo" + any non-empty username
                       -> 302 /dashboard, else 302 /login?error=1
  POST /logout         -> 302 /login (csrf_token accepted but not required)
  GET  /dashboard      200 when logged in, else 302 /login?next=%2Fdashboard
  GET  /debug/session  JSON {worker:{pid}, authenticated, current_user, session_backend}
  GET  /sesscheck/probe the drop-in probe from probes/python (404 unless SESSCHECK_PROBE=1)
"""
import os
import secrets
import time
import zlib
from html import escape

from flask import Flask, jsonify, redirect, request, session, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

PASSWORD = "demo"
# LANDING_HOME=1: see login_post.
LANDING_HOME = os.environ.get("LANDING_HOME") == "1"


class User(UserMixin):
    def __init__(self, username):
        self.username = username
        # Stable numeric id derived from the name: identical in every worker
        # and across restarts without any shared user table.
        self.id = str(zlib.crc32(username.encode("utf-8")))

    def get_id(self):
        # Flask-Login stores this in the session; keep the name so every
        # worker can rebuild the user from the session alone.
        return self.username


def _csrf_token():
    tok = session.get("csrf_token")
    if not tok:
        tok = secrets.token_urlsafe(24)
        session["csrf_token"] = tok
    return tok


def make_app(backend_name, configure):
    app = Flask(__name__)
    app.config["SESSION_COOKIE_NAME"] = "session"
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    configure(app)

    lm = LoginManager(app)
    lm.login_view = "login"
    lm.login_message = None

    @lm.user_loader
    def load_user(user_id):
        return User(user_id) if user_id else None

    @app.get("/login")
    def login():
        err = '<p class="error">Invalid credentials</p>' if request.args.get("error") else ""
        who = (
            f"<p>Logged in as {escape(current_user.username)}</p>"
            if current_user.is_authenticated
            else ""
        )
        nxt = escape(request.args.get("next", ""))
        return (
            "<!doctype html><html><head><title>Login</title></head><body>"
            f"<h1>Login</h1>{err}{who}"
            '<form method="post" action="/login">'
            f'<input type="hidden" name="csrf_token" value="{_csrf_token()}">'
            f'<input type="hidden" name="next" value="{nxt}">'
            '<label>Username <input type="text" name="username"></label>'
            '<label>Password <input type="password" name="password"></label>'
            '<button type="submit">Log in</button></form></body></html>'
        )

    @app.post("/login")
    def login_post():
        username = (request.form.get("username") or "").strip()
        password = request.form.get("password") or ""
        if not username or password != PASSWORD:
            return redirect("/login?error=1", code=302)
        login_user(User(username))
        # LANDING_HOME=1: a login lands on the public home page (as Flask-AppBuilder's does).
        return redirect("/" if LANDING_HOME else "/dashboard", code=302)

    @app.post("/logout")
    def logout():
        logout_user()
        session.pop("csrf_token", None)
        return redirect("/login", code=302)

    if LANDING_HOME:

        @app.get("/")
        def home():
            # Public: anonymous visitors get it too. Its links: a page that needs a login, a
            # public one, an asset and a logout (which init must not pick).
            return (
                "<!doctype html><html><head><title>Home</title>"
                '<link rel="stylesheet" href="/static/app.css"></head><body><h1>Home</h1>'
                '<a href="/about">About</a> <a href="/dashboard">Dashboard</a> '
                '<a href="/static/logo.png">logo</a> <a href="/logout">Log out</a>'
                "</body></html>"
            )

        @app.get("/about")
        def about():
            return "<!doctype html><html><body><h1>About</h1></body></html>"

    @app.get("/dashboard")
    @login_required
    def dashboard():
        slow = int(os.environ.get("SLOW_MS", "0") or 0)
        if slow > 0:
            time.sleep(slow / 1000.0)
        return (
            "<!doctype html><html><head><title>Dashboard</title></head><body>"
            f"<h1>Dashboard</h1><p>Hello {escape(current_user.username)}</p>"
            f"<p>worker {os.getpid()}</p>"
            '<form method="post" action="/logout">'
            f'<input type="hidden" name="csrf_token" value="{_csrf_token()}">'
            '<button type="submit">Log out</button></form></body></html>'
        )

    @app.get("/debug/session")
    def debug_session():
        authed = bool(current_user.is_authenticated)
        return jsonify(
            worker={"pid": os.getpid()},
            authenticated=authed,
            current_user=(
                {"id": current_user.id, "username": current_user.username}
                if authed
                else None
            ),
            session_backend=backend_name,
        )

    # The drop-in probe (probes/python), when installed: off unless SESSCHECK_PROBE=1.
    try:
        from sesscheck_probe.flask import blueprint as probe_blueprint
    except ImportError:
        probe_blueprint = None
    if probe_blueprint is not None:
        app.register_blueprint(probe_blueprint())

    return app
