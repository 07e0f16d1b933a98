import os
import time
from html import escape

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_POST

PASSWORD = "demo"


def _page(title, body):
    return HttpResponse(
        f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    )


def _get_or_create_user(username):
    User = get_user_model()
    for _ in range(3):
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            try:
                u = User(username=username)
                # Password "demo" is checked in the view: no slow hashing.
                u.set_unusable_password()
                u.save()
                return u
            except IntegrityError:  # created concurrently by another worker
                continue
    return User.objects.get(username=username)


def login_view(request):
    if request.method == "POST":
        username = (request.POST.get("username") or "").strip()
        password = request.POST.get("password") or ""
        if not username or password != PASSWORD:
            return HttpResponseRedirect("/login?error=1")
        user = _get_or_create_user(username)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return HttpResponseRedirect("/dashboard")
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    err = '<p class="error">Invalid credentials</p>' if request.GET.get("error") else ""
    who = (
        f"<p>Logged in as {escape(request.user.username)}</p>"
        if request.user.is_authenticated
        else ""
    )
    nxt = escape(request.GET.get("next", ""))
    # Always rendered, also when logged in, so a client can fetch a fresh
    # CSRF token for POST /logout (login() rotates the CSRF secret).
    return _page(
        "Login",
        f"<h1>Login</h1>{err}{who}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'
        f'<input type="hidden" name="next" value="{nxt}">'
        '<label>Username <input type="text" name="username"></label>'
        '<label>Password <input type="password" name="password"></label>'
        '<button type="submit">Log in</button></form>',
    )


@require_POST
def logout_view(request):
    logout(request)
    return HttpResponseRedirect("/login")


@login_required
def dashboard(request):
    if settings.SLOW_MS > 0:
        time.sleep(settings.SLOW_MS / 1000.0)
    return _page(
        "Dashboard",
        f"<h1>Dashboard</h1><p>Hello {escape(request.user.username)}</p>"
        f"<p>worker {os.getpid()}</p>"
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'
        '<button type="submit">Log out</button></form>',
    )


def debug_session(request):
    u = request.user
    authed = bool(u.is_authenticated)
    return JsonResponse(
        {
            "worker": {"pid": os.getpid()},
            "authenticated": authed,
            "current_user": {"id": u.pk, "username": u.username} if authed else None,
            "session_backend": f"django:{settings.SESSION_ENGINE.rsplit('.', 1)[-1]}"
            + ("+save-every-request" if settings.SESSION_SAVE_EVERY_REQUEST else "")
            + (":locmem" if settings.SESS_VARIANT == "locmem" else ""),
        }
    )


@require_POST
def notes(request):
    """A write for sesscheck's write requests: CsrfViewMiddleware checks the AJAX header
    (X-CSRFToken against the csrftoken cookie) before this runs, and answers 403 without it."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/login?next=/notes")
    return JsonResponse(
        {"author": request.user.username, "worker": {"pid": os.getpid()}}, status=201
    )
