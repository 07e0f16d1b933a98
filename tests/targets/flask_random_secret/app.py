"""BUG TARGET: Flask default signed-cookie sessions with a SECRET_KEY drawn
at import time.  Run under Gunicorn WITHOUT --preload: every worker imports
this module itself and gets its own key, so a session cookie only validates
on the worker that issued it ("logged in, then logged out on refresh")."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from flask_common import make_app  # noqa: E402

SECRET_KEY = os.urandom(32)  # the bug: per process, per start


def configure(app):
    app.config["SECRET_KEY"] = SECRET_KEY


app = make_app("flask:securecookie(random-key-per-worker)", configure)
