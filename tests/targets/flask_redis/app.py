"""Flask + Flask-Login + Flask-Session (Redis).  Healthy: sessions live in
Redis and the cookie is signed with a fixed key, so every worker, a HUP'd
worker and a restarted server all see the same logins."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import redis  # noqa: E402
from flask_session import Session  # noqa: E402

from flask_common import make_app  # noqa: E402


def configure(app):
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "sesscheck-flask-redis-fixed-secret")
    app.config["SESSION_TYPE"] = "redis"
    app.config["SESSION_REDIS"] = redis.from_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    app.config["SESSION_KEY_PREFIX"] = "sesscheck:"
    Session(app)


app = make_app("flask-session:redis", configure)
