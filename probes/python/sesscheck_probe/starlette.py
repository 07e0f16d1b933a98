"""Starlette and FastAPI: `app.router.routes.append(sesscheck_probe.starlette.probe_route())`
(or `app.add_route(*sesscheck_probe.starlette.route())`).

Authenticated means `request.user.is_authenticated` when AuthenticationMiddleware is installed,
otherwise a non-empty `session_key` (default "user") in `request.session` (SessionMiddleware).
Starlette's signed-cookie session does not know its age, so no seconds left unless `max_age` is
given (SessionMiddleware's max_age, renewed on each response).
"""
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .core import DEFAULT_PATH, TOKEN_HEADER, Decision, decide, payload


def probe_route(path=DEFAULT_PATH, session_key="user", max_age=None):
    async def probe(request):
        decision = decide(request.headers.get(TOKEN_HEADER))
        if decision is not Decision.ANSWER:
            return Response(status_code=decision.value)
        if "user" in request.scope:
            authenticated = request.user.is_authenticated
        elif "session" in request.scope:
            authenticated = bool(request.session.get(session_key))
        else:
            authenticated = False
        backend = "starlette:signed-cookie" if "session" in request.scope else "none"
        left = max_age if authenticated else None
        return JSONResponse(payload(authenticated, backend, left))

    return Route(path, probe, methods=["GET"])


def route(path=DEFAULT_PATH, session_key="user", max_age=None):
    """(path, endpoint) for `app.add_route(*route())`."""
    r = probe_route(path, session_key, max_age)
    return r.path, r.endpoint
