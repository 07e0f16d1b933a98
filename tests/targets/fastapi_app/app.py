"""FastAPI + Starlette's signed-cookie SessionMiddleware, with the drop-in sesscheck probe.

Same HTTP shape as the Flask targets (GET/POST /login, POST /logout, GET /dashboard), no CSRF.
Serve with several worker processes:

    uvicorn --workers 3 --host 127.0.0.1 --port $PORT app:app

SECRET_KEY (env) must be the same in every worker, or a login only holds on the worker that
signed it; the default is a fixed string.
"""
import os
from html import escape

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from sesscheck_probe.starlette import probe_route

PASSWORD = "demo"

app = FastAPI()
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ.get("SECRET_KEY", "sesscheck-fastapi-fixed-secret"),
    session_cookie="session",
)
app.router.routes.append(probe_route(session_key="user", max_age=14 * 24 * 3600))


@app.get("/login", response_class=HTMLResponse)
def login_page():
    return (
        "<!doctype html><html><head><title>Login</title></head><body><h1>Login</h1>"
        '<form method="post" action="/login">'
        '<label>Username <input type="text" name="username"></label>'
        '<label>Password <input type="password" name="password"></label>'
        '<button type="submit">Log in</button></form></body></html>'
    )


@app.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form("")):
    if not username.strip() or password != PASSWORD:
        return RedirectResponse("/login?error=1", status_code=302)
    request.session["user"] = username.strip()
    return RedirectResponse("/dashboard", status_code=302)


@app.post("/logout")
def logout(request: Request):
    request.session.clear()
    return RedirectResponse("/login", status_code=302)


@app.get("/dashboard")
def dashboard(request: Request):
    user = request.session.get("user")
    if not user:
        return RedirectResponse("/login?next=/dashboard", status_code=302)
    return HTMLResponse(
        f"<!doctype html><html><body><h1>Dashboard</h1><p>Hello {escape(user)}</p>"
        f"<p>worker {os.getpid()}</p></body></html>"
    )
