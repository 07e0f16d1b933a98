"""Flask + Flask-Login with Flask's default signed-cookie sessions and a fixed SECRET_KEY
(env SECRET_KEY, else a constant).  Healthy with no store at all: the cookie is the session,
so every worker that shares the key accepts it.  With a different SECRET_KEY per replica a
login only holds on the replica that signed it (tests/topology.rs uses that)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from flask_common import make_app  # noqa: E402


def configure(app):
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "sesscheck-flask-signed-fixed-secret")


app = make_app("flask:signed-cookie", configure)
