"""BUG TARGET: Flask-Session filesystem store in a temporary directory made
at import time.  Without --preload every Gunicorn worker gets its own
directory, so a session id is only known to the worker that created it."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cachelib.file import FileSystemCache  # noqa: E402
from flask_session import Session  # noqa: E402

from flask_common import make_app  # noqa: E402

SESSION_DIR = tempfile.mkdtemp(prefix="sesscheck-fs-")  # the bug: per worker


def configure(app):
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "sesscheck-flask-fs-fixed-secret")
    app.config["SESSION_TYPE"] = "cachelib"
    app.config["SESSION_CACHELIB"] = FileSystemCache(SESSION_DIR, threshold=10000)
    Session(app)


app = make_app("flask-session:cachelib-filesystem(per-worker tmpdir)", configure)
