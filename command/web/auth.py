"""Authentication at the edge: personal tokens or the login session, CSRF, page guards.

REST takes `Authorization: Bearer <user token>` or the session; Socket.IO takes
`auth={"token": …}` or the session. Every state-changing request made with the session must carry
the CSRF token (header `X-CSRFToken`, which Dash's renderer sends from the `_csrf_token` cookie,
or the form field `csrf_token`).
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from datetime import timedelta
from urllib.parse import quote, urlsplit

from flask import (Blueprint, Response, current_app, g, redirect, render_template_string, request,
                   session)
from flask.sessions import SecureCookieSessionInterface

from command.errors import DomainError
from command.users import service as users_service
from command.users.principal import COUNTY_ROLES, Principal

auth = Blueprint("auth", __name__)

CSRF_COOKIE = "_csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/_favicon", "/healthz", "/readyz",
                   "/grid/static/", "/grid-sw.js", "/grid/manifest.webmanifest",
                   "/metrics", "/login", "/socket.io", "/api/v1/reports")
# where each role lands after signing in
HOME = {"duty": "/", "leader": "/command", "admin": "/", "township": "/township",
        "grid": "/grid", "dept": "/township", "desk": "/desk"}
# which roles each page is for; others are sent to their own page
PAGE_ROLES = {"/": COUNTY_ROLES, "/command": COUNTY_ROLES,
              "/township": ("township", "dept", *COUNTY_ROLES), "/grid": ("grid", "township"),
              "/desk": ("desk", "duty", "township", "admin")}


class SessionInterface(SecureCookieSessionInterface):
    """The signed session cookie: HttpOnly, SameSite=Lax, Secure when served over HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return request.is_secure or request.headers.get("X-Forwarded-Proto") == "https"


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal_from(token: str | None = None) -> Principal | None:
    """The user of this request: a personal token, else the session's user."""
    with core().read() as s:
        if token:
            return users_service.by_token(s, token)
        user_id = session.get("uid")
        return users_service.by_id(s, user_id) if user_id is not None else None


def current() -> Principal | None:
    """The user of the current HTTP request (cached on `g`)."""
    if "principal" not in g:
        token = bearer_token()
        g.via_token = token is not None
        g.principal = principal_from(token)
    return g.principal


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get("X-CSRFToken") or request.form.get("csrf_token")
    return bool(expected and given and hmac.compare_digest(
        expected.encode(), given.encode("utf-8", "surrogatepass")))


def error(status: int, code: str, message: str) -> Response:
    """A JSON error answer."""
    from command.web.respond import json_response

    return json_response({"ok": False, "error": {"code": code, "message": message}}, status)


def guard():
    """Before every request: pages need a session, state changes with a session need CSRF."""
    path = request.path
    if path.startswith(PUBLIC_PREFIXES):
        return None
    principal = current()
    if request.method not in SAFE_METHODS and principal is not None and not g.via_token:
        if not _csrf_ok():
            return error(403, "csrf", "missing or wrong CSRF token; reload the page")
    if principal is not None:
        allowed = PAGE_ROLES.get(path.rstrip("/") or "/")
        if allowed is not None and principal.role not in allowed:
            return redirect(HOME.get(principal.role, "/login"))
        return None
    if path.startswith("/api/"):
        return None  # API endpoints answer 401 themselves
    if path.startswith("/_dash"):
        return error(401, "unauthorized", "please sign in")
    return redirect("/login?next=" + quote(path, safe="/"))


def require(*roles: str):
    """Decorator for API endpoints: 401 without a user, 403 for a role not listed (any if none)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            principal = current()
            if principal is None:
                return error(401, "unauthorized", "sign in or send Authorization: Bearer <token>")
            if roles and principal.role not in roles:
                return error(403, "forbidden", f"role {principal.role!r} may not do this")
            return view(principal, *args, **kwargs)
        return inner
    return wrap


def page_user() -> Principal | None:
    """Inside a page layout: the signed-in user, or None.

    None happens when Dash builds its validation layout (no user request): the page then
    renders its structure with no data. Visitors never get there without a session: `guard`
    sends them to /login, and a user of another role to their own page.
    """
    from flask import has_request_context

    return current() if has_request_context() else None


def _set_csrf_cookie(response: Response) -> Response:
    token = session.get("csrf")
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, samesite="Lax", secure=request.is_secure,
                            httponly=False, max_age=current_app.permanent_session_lifetime)
    return response


LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>登录 · 社会治理综合指挥中心</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/login.css"></head>
<body class="login-page"><main class="login">
<h1>社会治理综合指挥中心</h1>
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<label>用户名<input name="name" autocomplete="username" required autofocus value="{{ name }}"></label>
<label>密码<input name="password" type="password" autocomplete="current-password" required></label>
{% if message %}<p class="error" role="alert">{{ message }}</p>{% endif %}
<button type="submit">登录</button>
</form></main></body></html>"""


CHANGE_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>修改初始密码 · 社会治理综合指挥中心</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/login.css"></head>
<body class="login-page"><main class="login">
<h1>首次登录，请修改初始密码</h1>
<p class="hint">{{ name }}，初始密码只能使用一次。新密码至少 8 个字符，不能与初始密码相同。</p>
<form method="post" action="/login/password">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<label>新密码<input name="password" type="password" autocomplete="new-password" required
 minlength="8" autofocus></label>
<label>再次输入新密码<input name="again" type="password" autocomplete="new-password" required
 minlength="8"></label>
{% if message %}<p class="error" role="alert">{{ message }}</p>{% endif %}
<button type="submit">确认修改</button>
</form></main></body></html>"""

# how long a sign-in with a first password may take to choose the new one
PENDING_SECONDS = 600


def _safe_next(target: str | None, principal: Principal | None = None) -> str:
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) \
            and target.isprintable() and not urlsplit(target).netloc and target != "/login":
        return target
    return HOME.get(principal.role, "/") if principal else "/"


@auth.get("/login")
def login_form():
    session.setdefault("csrf", secrets.token_urlsafe(32))
    return render_template_string(LOGIN_PAGE, csrf=session["csrf"], next=request.args.get("next", ""),
                                  name="", message=None)


@auth.post("/login")
def login_submit():
    if not _csrf_ok():
        session["csrf"] = secrets.token_urlsafe(32)
        return render_template_string(LOGIN_PAGE, csrf=session["csrf"], name="",
                                      next=request.form.get("next", ""),
                                      message="页面已过期，请重新登录"), 400
    c = core()
    name = request.form.get("name", "")
    with c.write() as s, s.begin():
        outcome = users_service.login(s, name=name, password=request.form.get("password", ""),
                                      now=c.clock.now())
    if outcome.user_id is None:
        return render_template_string(LOGIN_PAGE, csrf=session["csrf"], name=name,
                                      next=request.form.get("next", ""),
                                      message=outcome.message), 401
    session.clear()  # a fresh session (and CSRF token) on every sign-in
    session["csrf"] = secrets.token_urlsafe(32)
    if outcome.must_change_password:
        # not signed in yet: only the change of the first password is open to this session
        session["pending_uid"] = outcome.user_id
        session["pending_until"] = time.time() + PENDING_SECONDS
        return _change_page(name.strip(), request.form.get("next", ""))
    return _signed_in(outcome.user_id, request.form.get("next"))


def _signed_in(user_id: int, target: str | None):
    session.permanent = True
    session["uid"] = user_id
    session["csrf"] = secrets.token_urlsafe(32)
    g.pop("principal", None)
    with core().read() as s:
        principal = users_service.by_id(s, user_id)
    return redirect(_safe_next(target, principal))


def _change_page(name: str, target: str, message: str | None = None, status: int = 200):
    return render_template_string(CHANGE_PAGE, csrf=session["csrf"], name=name, next=target,
                                  message=message), status


def _pending_user() -> int | None:
    uid, until = session.get("pending_uid"), session.get("pending_until")
    if uid is None or not isinstance(until, (int, float)) or until < time.time():
        return None
    return uid


@auth.get("/login/password")
def change_form():
    uid = _pending_user()
    if uid is None:
        return redirect("/login")
    with core().read() as s:
        user = users_service.by_id(s, uid)
    return _change_page(user.name if user else "", request.args.get("next", ""))


@auth.post("/login/password")
def change_submit():
    uid = _pending_user()
    if uid is None or not _csrf_ok():
        session.clear()
        return redirect("/login")
    password, again = request.form.get("password", ""), request.form.get("again", "")
    target = request.form.get("next", "")
    c = core()
    with c.read() as s:
        user = users_service.by_id(s, uid)
    name = user.name if user else ""
    if password != again:
        return _change_page(name, target, "两次输入的新密码不一致", 400)
    try:
        with c.write() as s, s.begin():
            users_service.change_first_password(s, user_id=uid, password=password)
    except DomainError as err:
        return _change_page(name, target, err.message, 400)
    session.clear()
    return _signed_in(uid, target)


@auth.post("/logout")
def logout():
    session.clear()
    response = redirect("/login")
    response.delete_cookie(CSRF_COOKIE)
    return response


@auth.get("/api/v1/me")
def me():
    principal = current()
    if principal is None:
        return error(401, "unauthorized", "not signed in")
    import json

    return Response(json.dumps({"name": principal.name, "role": principal.role,
                                "unit": principal.unit_code}, ensure_ascii=False),
                    mimetype="application/json")


def init_app(server, *, secret_key: str, session_days: int) -> None:
    """Wire sessions, the guard and the login pages into the Flask server."""
    server.secret_key = secret_key
    server.session_interface = SessionInterface()
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_NAME="cmdcenter_session",
                         PERMANENT_SESSION_LIFETIME=timedelta(days=session_days))
    server.before_request(guard)
    server.after_request(_set_csrf_cookie)
    server.register_blueprint(auth)


__all__ = ["COUNTY_ROLES", "auth", "current", "init_app", "page_user", "principal_from",
           "require"]
