"""The admin web UI under ``/ui/``: URL builder and try-it (server-rendered Jinja pages from
``templates/``, vanilla JS from ``static/``; no build step, nothing from a CDN).

Security: its own admin login (``ui:`` in config.yaml), a signed session cookie (HttpOnly,
SameSite=Strict, path /ui), a CSRF token on every POST (form field ``csrf_token`` or header
``X-CSRF-Token``), a strict Content-Security-Policy. The pages never show a stored password.

The message log (``/ui/log``, queries in gateway/logview.py) polls ``GET /ui/api/log`` for status
changes; a dead letter is re-driven with ``POST /ui/log/redrive/<job id>`` (CSRF form).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.security import check_password_hash

from .. import urlbuilder as ub
from ..clock import Clock
from ..config import Config, UiSettings
from ..errors import Throttled
from ..model import ApiError
from ..render import RenderError
from ..services import bridge
from ..sms import LANGUAGE_CODES, TRANSLITERATIONS, analyse
from ..store import uisessions
from ..store.engine import Database
from ..store.logview import COLUMNS, VIEWS, LogFilter, LogView, Page
from .common import json_object

_log = logging.getLogger("smsbridge")

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="../../static", static_url_path="/static")

# (endpoint, label) of the navigation.
NAV: tuple[tuple[str, str], ...] = (("ui.builder", "URL builder"), ("ui.try_it", "Try it"), ("ui.log", "Message log"))
OPEN_ENDPOINTS = frozenset({"ui.login", "ui.login_post", "ui.static"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def install_ui(app: Flask, config: Config) -> None:
    """Register the UI if ``ui.enabled``; set up the session cookie."""
    ui = config.ui
    if not ui.enabled:
        return
    app.secret_key = ui.secret_key or secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_NAME="smsbridge_ui", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=ui.secure_cookie, SESSION_COOKIE_PATH="/ui",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=ui.session_minutes),
    )
    app.session_interface = UiSessions()
    ctx = app.extensions["smsbridge"]
    app.extensions[LIVE] = LiveSessions(ui.session_minutes * 60, ctx.clock, ctx.db)
    app.register_blueprint(bp)


LIVE = "smsbridge.ui_sessions"


class LiveSessions:
    """The UI sessions this bridge still honours: a signed cookie alone is not enough, so logout revokes a
    session here and now, whoever kept a copy of its cookie. In the store (gateway/store/uisessions.py), so
    every process of a ``--workers`` bridge honours the same sessions; a password change needs a restart,
    and the sessions opened before it end after ``session_minutes``."""

    def __init__(self, seconds: float, clock: Clock, db: Database) -> None:
        self.seconds, self.clock, self.db = seconds, clock, db

    def open(self) -> str:
        sid, now = secrets.token_urlsafe(24), self.clock.now()
        uisessions.open_session(self.db, sid, now, now + self.seconds)
        return sid

    def valid(self, sid: str | None) -> bool:
        return bool(sid) and uisessions.is_live(self.db, sid or "", self.clock.now())

    def close(self, sid: str | None) -> None:
        if sid:
            uisessions.close_session(self.db, sid)


def _live() -> LiveSessions:
    return current_app.extensions[LIVE]


class UiSessions(SecureCookieSessionInterface):
    """Cookie sessions under ``/ui`` only (the cookie's path): the API entrances never carry one, and opening
    a session costs every request a signer and a cookie lookup (~20 µs of the sync path's ~1.9 ms)."""

    def get_cookie_path(self, app: Flask) -> str:
        return request.script_root + "/ui"  # under the proxy's X-Forwarded-Prefix, if any

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path == "/ui" or request.path.startswith("/ui/"):
            return super().open_session(app, request)
        return self.make_null_session(app)


def _settings() -> UiSettings:
    return bridge().config.ui


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@bp.before_request
def _guard() -> Response | None:
    g.fmt = "json"
    if request.method == "POST":
        given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(400, "BAD_REQUEST", "The form's CSRF token is missing or out of date: reload the page")
    if request.endpoint in OPEN_ENDPOINTS or (session.get("admin") and _live().valid(session.get("sid"))):
        return None
    if request.method in ("GET", "HEAD") and not request.path.startswith("/ui/api/"):
        return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
    raise ApiError(401, "UNAUTHORIZED", "Log in to the admin UI first")


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "ui.static":
        resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "nav": NAV}


def _upstream_label() -> dict[str, Any]:
    ctx = bridge()
    if ctx.config.upstream.is_sandbox:
        return {"sandbox": True, "text": "Sandbox: the embedded Infobip stand-in. No real SMS is sent."}
    return {"sandbox": False,
            "text": f"REAL Infobip at {ctx.sender.upstream.host}: messages are delivered and charged."}


# -- login ---------------------------------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    """Only a path inside the UI (no scheme, no host, no //), under the proxy's prefix if any."""
    if target and target.startswith("/ui/") and not urlsplit(target).netloc and "\\" not in target:
        return request.script_root + target  # X-Forwarded-Prefix from a trusted proxy (gateway/proxies.py)
    return url_for("ui.builder")


@bp.get("/login")
def login() -> str:
    return render_template("login.html", next=request.args.get("next", ""), error=None, user="")


@bp.post("/login")
def login_post() -> Response | tuple[str, int, dict[str, str]]:
    ui, throttle = _settings(), bridge().throttle
    user, password = request.form.get("username", ""), request.form.get("password", "")
    keys = throttle.keys(user, request.remote_addr)
    try:
        throttle.check(keys, "ui")
    except Throttled as exc:
        return (render_template("login.html", next=request.form.get("next", ""), error=exc.text, user=user), 429,
                {"Retry-After": str(int(exc.retry_after) + 1)})
    ok = hmac.compare_digest(user.encode(), ui.admin_user.encode())
    if ui.admin_password_hash:
        ok = check_password_hash(ui.admin_password_hash, password) and ok
    elif ui.admin_password is not None:
        ok = hmac.compare_digest(password.encode(), ui.admin_password.encode()) and ok
    else:
        ok = False
    if not ok:
        throttle.failed(keys, "ui")
        _log.warning("failed admin UI login for %r from %s", user, request.remote_addr)
        return render_template("login.html", next=request.form.get("next", ""), error="Wrong user name or password",
                               user=user), 401, {}
    throttle.succeeded(user)
    _live().close(session.get("sid"))
    session.clear()  # a fresh session (and CSRF token) after login
    session.permanent = True
    session["admin"] = user
    session["sid"] = _live().open()
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Response:
    _live().close(session.get("sid"))  # revoked here: a copy of the cookie no longer opens the UI
    session.clear()
    return redirect(url_for("ui.login"))


@bp.get("/")
def index() -> Response:
    return redirect(url_for("ui.builder"))


# -- pages ---------------------------------------------------------------------------------------------
def _base_url() -> str:
    return bridge().config.server.public_url or request.url_root.rstrip("/")


def _targets() -> list[dict[str, str]]:
    ctx = bridge()
    out = [{"name": ub.QUERY_TARGET, "label": "Raw query API (/sms/1/text/query)"}]
    for name, spec in ctx.config.templates.items():
        out.append({"name": name, "label": f"Template {name}" + (f": {spec.description}" if spec.description else "")})
    return out


def _page_data() -> dict[str, Any]:
    ctx = bridge()
    return {
        "base": _base_url(),
        "targets": _targets(),
        "callers": sorted(ctx.config.callers),
        "styles": [{"name": s.name, "label": s.label} for s in ub.STYLES.values()]
        + [{"name": "custom", "label": "custom prefix/suffix"}],
        "presets": [{"name": k, "label": f"{v['label']} ({ub.STYLES[v['style']].token(v['to'])}, "
                     f"{ub.STYLES[v['style']].token(v['text'])})"} for k, v in ub.PRESETS.items()],
        "passwordToken": ub.PASSWORD_TOKEN,
        "languageCodes": sorted(LANGUAGE_CODES),
        "transliterations": sorted(TRANSLITERATIONS),
        "upstream": _upstream_label(),
    }


@bp.get("/builder")
def builder() -> str:
    return render_template("builder.html", data=_page_data(), upstream=_upstream_label())


@bp.get("/try")
def try_it() -> str:
    return render_template("try.html", data=_page_data(), upstream=_upstream_label())


# -- JSON endpoints used by static/ui.js -----------------------------------------------------------------
def _body() -> dict[str, Any]:
    return json_object()


def _invalid(exc: Exception, prop: str = "spec") -> ApiError:
    return ApiError.bad_request(prop, str(exc))


def _params(target: str) -> list[dict[str, Any]]:
    return [vars(p) for p in ub.target_params(target, bridge().config.templates)]


def _style(body: dict[str, Any]) -> ub.Style:
    return ub.style_of(str(body.get("style") or "percent"), str(body.get("prefix") or ""),
                       str(body.get("suffix") or ""))


@bp.post("/api/default")
def api_default() -> Response:
    """The starting form for a target, style and preset."""
    body = _body()
    target = str(body.get("target") or ub.QUERY_TARGET)
    try:
        spec = ub.default_spec(str(body.get("base") or _base_url()), target, bridge().config.templates,
                               _style(body), body.get("username") or None, str(body.get("fmt") or ""),
                               body.get("preset") or None)
        return jsonify(spec=spec.to_dict(), params=_params(target))
    except ValueError as exc:
        raise _invalid(exc) from None


@bp.post("/api/build")
def api_build() -> Response:
    body = _body()
    try:
        spec = ub.Spec.from_dict(body.get("spec") or {})
        url = ub.build(spec)
    except (ValueError, KeyError, TypeError) as exc:
        raise _invalid(exc) from None
    return jsonify(url=url, curl=ub.curl(url))


@bp.post("/api/parse")
def api_parse() -> Response:
    body = _body()
    try:
        hint = ub.custom_style(str(body["prefix"]), str(body.get("suffix") or "")) if body.get("prefix") else None
        parsed = ub.parse(str(body.get("url") or ""), bridge_base=str(body.get("base") or _base_url()), hint=hint)
        params = _params(parsed.spec.target)
    except ValueError as exc:
        raise _invalid(exc, "url") from None
    known = {p["name"] for p in params}
    notes = list(parsed.notes)
    unknown = [f.param for f in parsed.spec.fields if f.param not in known and f.param != "charset"]
    if unknown:
        notes.append(f"Not a parameter of this target (the bridge would reject it): {', '.join(unknown)}")
    return jsonify(spec=parsed.spec.to_dict(), params=params, notes=notes)


@bp.post("/api/preview")
def api_preview() -> Response:
    """What the handset will show: the text (rendered through the template if one is given)."""
    body = _body()
    ctx = bridge()
    target = str(body.get("target") or ub.QUERY_TARGET)
    raw_values = body.get("values") or {}
    if not isinstance(raw_values, dict):
        raise ApiError.bad_request("values", "must be an object")
    values = {str(k): str(v) for k, v in raw_values.items()}
    lang, translit = values.get("languageCode") or None, values.get("transliteration") or None
    if target == ub.QUERY_TARGET:
        text = values.get("text", "")
    else:
        spec, compiled = ctx.config.templates.get(target), ctx.templates.get(target)
        if spec is None or compiled is None:
            raise ApiError(404, "NOT_FOUND", f"No template named {target!r}")
        filled = {n: values.get(n) or p.default or "" for n, p in spec.params.items()}
        try:
            fields = compiled.render(filled)
        except RenderError as exc:
            raise ApiError.bad_request("values", str(exc)) from None
        text = fields.get("text", "")
        lang, translit = fields.get("languageCode") or lang, fields.get("transliteration") or translit
    if lang is not None and lang not in LANGUAGE_CODES:
        raise ApiError.bad_request("languageCode", f"must be one of {', '.join(sorted(LANGUAGE_CODES))}")
    if translit is not None and translit not in TRANSLITERATIONS:
        raise ApiError.bad_request("transliteration", f"must be one of {', '.join(sorted(TRANSLITERATIONS))}")
    a = analyse(text, lang, translit)
    return jsonify(originalText=text, textPreview=a.text, encoding=a.encoding, parts=a.message_count,
                   charactersRemaining=a.characters_remaining, characters=len(text),
                   languageCode=a.language_code, segments=list(a.segments))



# -- the message log -------------------------------------------------------------------------------------
def _log_query() -> tuple[str, LogFilter, int]:
    """The view, filter and page of a log request (query parameters), checked."""
    a = request.args
    view = a.get("view") or "messages"
    if view not in dict(VIEWS):
        raise ApiError.bad_request("view", f"must be one of {', '.join(dict(VIEWS))}")
    try:
        page = int(a.get("page") or 1)
    except ValueError:
        page = 0
    if not 1 <= page <= 100000:
        raise ApiError.bad_request("page", "must be a whole number from 1")
    f = LogFilter(*(str(a.get(k) or "")[:100] for k in ("number", "bulkId", "messageId", "status")))
    return view, f, page


def _log_page(view: str, f: LogFilter, page: int) -> Page:
    ctx, ui = bridge(), _settings()
    lv = LogView(ctx.db, ctx.clock.now(), ui.mask_text, ui.mask_keep)
    return lv.page(view, f, page, ui.log_page_size)


def _log_args(view: str, f: LogFilter, page: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"view": view, "number": f.number, "bulkId": f.bulk_id, "messageId": f.message_id,
                           "status": f.status}
    if page:
        out["page"] = page
    return {k: v for k, v in out.items() if v}


@bp.get("/log")
def log() -> str:
    view, f, page = _log_query()
    result = _log_page(view, f, page)
    args = _log_args(view, f)
    return render_template(
        "log.html", view=view, views=VIEWS, f=f, result=result, columns=COLUMNS[view],
        masked=_settings().mask_text, redriven=request.args.get("redriven", ""),
        view_urls={v: url_for("ui.log", **_log_args(v, f)) for v, _ in VIEWS},
        prev_url=url_for("ui.log", **args, page=page - 1) if page > 1 else None,
        next_url=url_for("ui.log", **args, page=page + 1) if result.has_next else None,
        log_data={"api": url_for("ui.api_log", **_log_args(view, f, page)), "interval": 2000})


@bp.get("/api/log")
def api_log() -> Response:
    """One page of the log as JSON (the page's script polls it for status changes)."""
    view, f, page = _log_query()
    return jsonify(_log_page(view, f, page).to_dict())


@bp.post("/log/redrive/<int:job_id>")
def log_redrive(job_id: int) -> Response:
    """Re-drive a dead letter (due now, attempts reset) and go back to the dead letters."""
    outbox = bridge().outbox
    job = outbox.job(job_id)
    if job is None:
        raise ApiError(404, "NOT_FOUND", f"No outbox job {job_id}")
    if not outbox.redrive(job_id):
        raise ApiError.bad_request("job", f"job {job_id} is {job.state}, not a dead letter")
    return redirect(url_for("ui.log", view="dead", redriven=job_id))


@bp.app_template_global("traffic_table")
def traffic_table() -> dict[str, Any]:
    """Traffic control at a glance (templates/traffic_table.html): each caller's waiting messages and rate,
    the other buckets, the upstream's 429 pause."""
    ctx = bridge()
    pacer, now = ctx.queue.pacer, ctx.clock.now()
    waiting = pacer.waiting()
    buckets = {b["key"]: b for b in pacer.state()}
    rows = []
    for name in sorted({*ctx.config.callers, *(c for c in waiting if c)}):
        n, first = waiting.get(name, (0, now))
        b = buckets.get(f"caller:{name}")
        rows.append({"caller": name, "waiting": n, "oldest": f"{max(0.0, now - first):.0f} s" if n else "",
                     "rate": b["rate"].describe() if b else "unpaced", "tokens": f"{b['tokens']:.1f}" if b else ""})
    others = [{"key": k, "rate": b["rate"].describe(), "tokens": f"{b['tokens']:.1f}", "taken": b["taken"]}
              for k, b in buckets.items() if not k.startswith("caller:")]
    until = pacer.paused_until()
    return {"callers": rows, "buckets": others, "paused": f"{until - now:.0f} s" if until else ""}
