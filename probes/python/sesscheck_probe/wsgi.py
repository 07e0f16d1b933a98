"""Any WSGI app, unchanged: every answer names the worker that served it.

A wrapper, for apps one would rather not edit (an app installed from PyPI): it adds
`X-Sesscheck-Worker: host:pid` to every response, which sesscheck reads with

    [probe]
    worker_header = "X-Sesscheck-Worker"

and judges "logged in" from the pages themselves. Gunicorn loads it around the app:

    SESSCHECK_PROBE=1 gunicorn -w 3 'sesscheck_probe.wsgi:wrap("myproject.wsgi:application")'
    SESSCHECK_PROBE=1 gunicorn -w 3 'sesscheck_probe.wsgi:wrap("flaskbb:create_app(config=\"x.cfg\")")'

Off (no header) unless SESSCHECK_PROBE is on; with SESSCHECK_PROBE_TOKEN set, only requests
that carry it in X-Sesscheck-Token get the header, as the probe endpoint does.
"""
import ast
import importlib
import os

from .core import TOKEN_HEADER, Decision, decide, worker_host

WORKER_HEADER = "X-Sesscheck-Worker"
_TOKEN_ENVIRON = "HTTP_" + TOKEN_HEADER.upper().replace("-", "_")


class WorkerHeader:
    """WSGI middleware: `X-Sesscheck-Worker: host:pid` on every answer (see the module)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if decide(environ.get(_TOKEN_ENVIRON)) is not Decision.ANSWER:
            return self.app(environ, start_response)
        # Read per request: a worker forked from a preloading master has its own pid.
        worker = f"{worker_host()}:{os.getpid()}"

        def start(status, headers, exc_info=None):
            return start_response(status, list(headers) + [(WORKER_HEADER, worker)], exc_info)

        return self.app(environ, start)


def load(spec):
    """The app `spec` names, as gunicorn reads it: `module:name`, or `module:factory(args)`
    with literal arguments (no other code is run)."""
    module, _, expr = spec.partition(":")
    namespace = vars(importlib.import_module(module))
    node = ast.parse(expr or "application", mode="eval").body
    if isinstance(node, ast.Name):
        return namespace[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        return namespace[node.func.id](*args, **kwargs)
    raise ValueError(f"{spec!r}: give module:name or module:factory(literal arguments)")


def wrap(app):
    """The app (or the gunicorn-style spec of one, see `load`) with the worker header."""
    return WorkerHeader(load(app) if isinstance(app, str) else app)
