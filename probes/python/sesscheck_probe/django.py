"""Django: a view for your urls.py, or a middleware that answers the probe path by itself.

    # urls.py
    path("sesscheck/probe", sesscheck_probe.django.probe_view)
    # or settings.py, after AuthenticationMiddleware:
    MIDDLEWARE += ["sesscheck_probe.django.ProbeMiddleware"]   # path: SESSCHECK_PROBE_PATH

Seconds left come from `request.session.get_expiry_age()`.
"""
from django.conf import settings
from django.http import Http404, HttpResponseForbidden, JsonResponse

from .core import DEFAULT_PATH, TOKEN_HEADER, Decision, decide, payload


def _answer(request):
    decision = decide(request.headers.get(TOKEN_HEADER))
    if decision is Decision.HIDDEN:
        raise Http404()
    if decision is Decision.FORBIDDEN:
        return HttpResponseForbidden()
    user = getattr(request, "user", None)
    authenticated = bool(user is not None and user.is_authenticated)
    session = getattr(request, "session", None)
    left = session.get_expiry_age() if session is not None and authenticated else None
    return JsonResponse(payload(authenticated, settings.SESSION_ENGINE, left))


def probe_view(request):
    return _answer(request)


class ProbeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.path = getattr(settings, "SESSCHECK_PROBE_PATH", DEFAULT_PATH)

    def __call__(self, request):
        if request.path == self.path:
            try:
                return _answer(request)
            except Http404:
                pass  # disabled: let the app answer as if the probe did not exist
        return self.get_response(request)
