"""The admin web UI under ``/ui/``: URL builder and try-it (server-rendered Jinja pages from
``templates/``, vanilla JS from ``static/``; no build step, nothing from a CDN).

Security: its own admin login (``ui:`` in config.yaml), a signed session cookie (HttpOnly,
SameSite=Strict, path /ui), a CSRF token on every POST (form field ``csrf_token`` or header
``X-CSRF-Token``), a strict Content-Security-Policy. The pages never show a stored password.

The message log (``/ui/log``, queries in gateway/logview.py) polls ``GET /ui/api/log`` for status
changes; a dead letter is re-driven with ``POST /ui/log/redrive/<job id>`` (CSRF form).
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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
    stream_with_context,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.security import check_password_hash

from .. import configview, svgchart
from .. import urlbuilder as ub
from ..clock import Clock
from ..config import Config, UiSettings
from ..errors import Throttled
from ..model import ApiError
from ..redact import redact
from ..render import RenderError
from ..services import bridge
from ..sms import LANGUAGE_CODES, TRANSLITERATIONS, analyse
from ..store import dashboard as dashboard_store
from ..store import uisessions
from ..store.engine import Database
from ..store.logview import (
    COLUMNS,
    JOB_STATES,
    MAIN_COLUMNS,
    STATES,
    STATUS_GROUPS,
    VIEWS,
    LogFilter,
    LogView,
    Page,
)
from ..wire.statuses import STATUSES
from .common import json_object

_log = logging.getLogger("smsbridge")

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="../../static", static_url_path="/static")

# (endpoint, label) of the navigation.
NAV: tuple[tuple[str, str], ...] = (("ui.dashboard", "Dashboard"), ("ui.builder", "URL builder"), ("ui.try_it", "Try it"),
                                    ("ui.log", "Message log"), ("ui.config_view", "Configuration"))
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
    app.extensions[DASH] = DashCache()
    app.register_blueprint(bp)


LIVE = "smsbridge.ui_sessions"


class LiveSessions:
    """The UI sessions this bridge still honours: a signed cookie alone is not enough, so logout revokes a
    session here and now, whoever kept a copy of its cookie. In the store (gateway/store/uisessions.py), so
    every process and every bridge on the store honours the same sessions. A restart keeps them (a rolling
    restart does not log the admins out); a changed admin user or password ends them all (the cookie carries
    a keyed fingerprint of the credentials, :func:`_cred_fingerprint`)."""

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
    """Logged out first, CSRF second: an ended session says "logged out" (and sends a page back to the login,
    which returns to the same page and filter), never "CSRF token out of date"."""
    g.fmt = "json"
    open_endpoint = request.endpoint in OPEN_ENDPOINTS
    if not open_endpoint and not (session.get("admin") and session.get("cred") == _cred_fingerprint()
                                  and _live().valid(session.get("sid"))):
        if request.path.startswith("/ui/api/"):
            text = ("Logged out: the session ended (expired, or logged out elsewhere); log in again"
                    if _was_logged_in() else "Log in to the admin UI first")
            raise ApiError(401, "UNAUTHORIZED", text)
        back = request.full_path.rstrip("?") if request.method in ("GET", "HEAD") else request.referrer or ""
        back_path = urlsplit(back).path + (("?" + urlsplit(back).query) if urlsplit(back).query else "")
        return redirect(url_for("ui.login", next=back_path, **({"ended": 1} if _was_logged_in() else {})))
    if request.method == "POST":
        given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(400, "BAD_REQUEST", "The form's CSRF token is missing or out of date: reload the page")
    return None


def _cred_fingerprint() -> str:
    """A keyed digest of the admin credentials, kept in the (signed, readable) session cookie: a changed
    user or password ends every session at the next request, so a restart need not end them (a rolling
    restart keeps the admins logged in). Keyed with the cookie's own secret, so the cookie says nothing
    about the password."""
    ui = _settings()
    material = "\0".join((ui.admin_user, ui.admin_password_hash or "", ui.admin_password or ""))
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, material.encode(), "sha256").hexdigest()[:32]


WAS = "smsbridge_ui_was"  # "this browser had a session": an ended session then says "logged out"


def _was_logged_in() -> bool:
    """A session that ended (its cookie expired with it, or it was revoked), as opposed to none ever."""
    return bool(session.get("admin") or request.cookies.get(WAS))


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


def _demo_hint() -> str | None:
    """Where the demo credentials are, when the upstream is the sandbox (no real SMS behind the login)."""
    if bridge().config.upstream.is_sandbox:
        return ("Demo on the sandbox: the user and password are ui.admin_user and ui.admin_password in the "
                "configuration file (admin / admin in the shipped config.yaml).")
    return None


# -- login ---------------------------------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    """Only a path inside the UI (no scheme, no host, no //), under the proxy's prefix if any."""
    if target and target.startswith("/ui/") and not urlsplit(target).netloc and "\\" not in target:
        return request.script_root + target  # X-Forwarded-Prefix from a trusted proxy (gateway/proxies.py)
    return url_for("ui.dashboard")


@bp.get("/login")
def login() -> str:
    ended = "You were logged out: the session ended. Log in again to go back where you were." \
        if request.args.get("ended") else None
    return render_template("login.html", next=request.args.get("next", ""), error=None, user="", hint=_demo_hint(),
                           notice=ended)


@bp.post("/login")
def login_post() -> Response | tuple[str, int, dict[str, str]]:
    ui, throttle = _settings(), bridge().throttle
    user, password = request.form.get("username", ""), request.form.get("password", "")
    keys = throttle.keys(user, request.remote_addr)
    try:
        reserved = throttle.check(keys, "ui", lambda: True)  # every admin login checks its password
    except Throttled as exc:
        return (render_template("login.html", next=request.form.get("next", ""), error=exc.text, user=user), 429,
                {"Retry-After": str(int(exc.retry_after) + 1)})
    try:
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
            return render_template("login.html", next=request.form.get("next", ""),
                                   error="Wrong user name or password", user=user, hint=_demo_hint()), 401, {}
        throttle.succeeded(user)
    finally:
        if reserved:
            throttle.release(keys)
    _live().close(session.get("sid"))
    session.clear()  # a fresh session (and CSRF token) after login
    session.permanent = True
    session["admin"] = user
    session["sid"] = _live().open()
    session["cred"] = _cred_fingerprint()
    resp = redirect(_safe_next(request.form.get("next")))
    resp.set_cookie(WAS, "1", max_age=30 * 86400, path=request.script_root + "/ui", httponly=True, samesite="Strict",
                    secure=ui.secure_cookie)
    return resp


@bp.post("/logout")
def logout() -> Response:
    _live().close(session.get("sid"))  # revoked here: a copy of the cookie no longer opens the UI
    session.clear()
    resp = redirect(url_for("ui.login"))
    resp.delete_cookie(WAS, path=request.script_root + "/ui")
    return resp


@bp.get("/")
def index() -> str:
    return dashboard()


# -- the dashboard ---------------------------------------------------------------------------------------
RANGES: dict[str, tuple[str, float, int]] = {  # name: (label, seconds, buckets)
    "hour": ("last hour", 3600, 12), "day": ("last 24 hours", 86400, 24), "week": ("last 7 days", 7 * 86400, 28)}


def _dash_query() -> tuple[str, str, str]:
    a = request.args
    rng = a.get("range") or "day"
    if rng not in RANGES:
        raise ApiError.bad_request("range", f"must be one of {', '.join(RANGES)}")
    caller, template = (a.get("caller") or "")[:100], (a.get("template") or "")[:100]
    return rng, caller, template


class DashCache:
    """The dashboard's period figures, kept a while when they were slow to count: a week of a million messages
    takes about a second and a half (bench/console.py), and every open dashboard asks again every 5 s. A result
    that took ``t`` seconds is reused for ``min(60, 20·t)`` seconds (real time); a fast one is never kept, so
    small records (and the tests) always see the store as it is. The health figures are never cached."""

    def __init__(self, slow: float = 0.2) -> None:
        self.slow = slow
        self._kept: dict[tuple[str, str, str], tuple[float, dashboard_store.Stats]] = {}

    def get(self, key: tuple[str, str, str], compute: Callable[[], dashboard_store.Stats]) -> dashboard_store.Stats:
        hit = self._kept.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        started = time.monotonic()
        stats = compute()
        took = time.monotonic() - started
        if took >= self.slow:
            self._kept[key] = (time.monotonic() + min(60.0, 20 * took), stats)
        else:
            self._kept.pop(key, None)
        return stats


DASH = "smsbridge.dashboard_cache"


def _dash_stats(rng: str, caller: str, template: str) -> dashboard_store.Stats:
    _, seconds, buckets = RANGES[rng]
    ctx = bridge()

    def compute() -> dashboard_store.Stats:
        now = ctx.clock.now()
        return dashboard_store.stats(ctx.db, now - seconds, now, buckets, caller, template)

    return current_app.extensions[DASH].get((rng, caller, template), compute)


def _dash_data(rng: str, caller: str, template: str) -> dict[str, Any]:
    ctx = bridge()
    st = _dash_stats(rng, caller, template)
    up = dashboard_store.upstream_health(ctx.db, ctx.clock.now() - 300)
    return {
        "range": rng, "caller": caller, "template": template,
        "sent": st.sent, "delivered": st.delivered, "failed": st.failed, "pending": st.pending,
        "deliveryRate": None if st.delivery_rate is None else round(st.delivery_rate * 100, 1),
        "reportDelayP50": st.delay_p50, "reportDelayP95": st.delay_p95, "reportDelaySample": st.delay_sample,
        "topErrors": [{"reason": r, "count": n} for r, n in st.top_errors],
        "queueDepth": ctx.store.queue_depth(), "outboxDepth": ctx.outbox.depth(), "deadLetters": ctx.outbox.store.dead(),
        "upstream": {"attempts5m": up.attempts, "errors5m": up.errors, "lastAt": up.last_at,
                     "lastStatus": up.last_status, "lastError": redact(up.last_error or "") or None,
                     "ok": up.last_at is None or (up.last_error is None and (up.last_status or 0) < 500)},
        "series": st.series, "bucketSeconds": st.bucket_seconds,
    }


@bp.get("/dashboard")
def dashboard() -> str:
    rng, caller, template = _dash_query()
    ctx = bridge()
    data = _dash_data(rng, caller, template)
    args = {k: v for k, v in (("range", rng), ("caller", caller), ("template", template)) if v}
    return render_template("dashboard.html", d=data, ranges=RANGES, rng=rng, caller=caller, template=template,
                           callers=sorted(ctx.config.callers), templates=sorted(ctx.config.templates),
                           chart_url=url_for("ui.dashboard_chart", **args), upstream=_upstream_label(),
                           log_url=url_for("ui.log", **{k: v for k, v in args.items() if k != "range"}),
                           dash_data={"api": url_for("ui.api_dashboard", **args),
                                      "chart": url_for("ui.dashboard_chart", **args), "interval": 5000})


@bp.get("/api/dashboard")
def api_dashboard() -> Response:
    return jsonify(_dash_data(*_dash_query()))


@bp.get("/dashboard/chart.svg")
def dashboard_chart() -> Response:
    rng, caller, template = _dash_query()
    st = _dash_stats(rng, caller, template)
    who = " · ".join(x for x in (caller and f"caller {caller}", template and f"template {template}") if x)
    title = f"Messages per {_step(st.bucket_seconds)}, {RANGES[rng][0]}" + (f" ({who})" if who else "")
    return Response(svgchart.stacked_bars(st.series, st.bucket_seconds, title), mimetype="image/svg+xml")


def _step(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds < 3600 else f"{seconds / 3600:g} hours"


# -- pages ---------------------------------------------------------------------------------------------
def _base_url() -> str:
    return bridge().config.server.public_url or request.url_root.rstrip("/")


def _targets() -> list[dict[str, str]]:
    ctx = bridge()
    out = [{"name": ub.QUERY_TARGET, "label": "Raw query API (/sms/1/text/query)"}]
    out += [{"name": n, "label": f"For {d.label} ({d.path})"} for n, d in ub.DIALECTS.items()]
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


@bp.get("/config")
def config_view() -> str:
    """The running configuration, read-only, secrets masked; each template with a URL ready to paste."""
    ctx = bridge()
    urls = {}
    for name, spec in ctx.config.templates.items():
        caller = next((c for c in spec.callers if c != "*"), next(iter(ctx.config.callers), None))
        urls[name] = ub.build(ub.default_spec(_base_url(), name, ctx.config.templates, ub.STYLES["percent"], caller))
    return render_template("config.html", sections=configview.sections(ctx.config), urls=urls,
                           source=ctx.config.source, upstream=_upstream_label())


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
    """The starting form for a target, style and preset; the caller is the configuration's first unless the body
    names one (or ``null``: none), so that a preset's URL carries credentials like any other."""
    body = _body()
    target = str(body.get("target") or ub.QUERY_TARGET)
    callers = bridge().config.callers
    username = body.get("username") if "username" in body else next(iter(sorted(callers)), None)
    try:
        spec = ub.default_spec(str(body.get("base") or _base_url()), target, bridge().config.templates,
                               _style(body), str(username) if username else None, str(body.get("fmt") or ""),
                               body.get("preset") or None)
        return jsonify(spec=spec.to_dict(), params=_params(target))
    except ValueError as exc:
        raise _invalid(exc) from None


@bp.post("/api/build")
def api_build() -> Response:
    """The URL and the curl command for a form, or a 400 naming each field the bridge would refuse (nothing
    half-right is handed out); ``notes`` say what to know (an unknown caller, no caller)."""
    body = _body()
    ctx = bridge()
    try:
        spec = ub.Spec.from_dict(body.get("spec") or {})
        found = ub.check(spec, ctx.config.templates, ctx.config.callers)
        if found.errors:
            raise ApiError.invalid({k: [v] for k, v in found.errors.items()})
        url = ub.build(spec)
    except (ValueError, KeyError, TypeError) as exc:
        raise _invalid(exc) from None
    return jsonify(url=url, curl=ub.curl(spec), notes=found.notes)


@bp.post("/api/parse")
def api_parse() -> Response:
    """A pasted URL or curl command line as the form; the caller it names is kept even when it is not
    configured here (the build's notes say so)."""
    body = _body()
    try:
        hint = ub.custom_style(str(body["prefix"]), str(body.get("suffix") or "")) if body.get("prefix") else None
        parsed = ub.parse(str(body.get("url") or ""), bridge_base=str(body.get("base") or _base_url()), hint=hint)
        params = _params(parsed.spec.target)
    except ValueError as exc:
        raise _invalid(exc, "url") from None
    return jsonify(spec=parsed.spec.to_dict(), params=params, notes=parsed.notes)


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
    elif target in ub.DIALECTS:  # another gateway's parameters: its own name for the text
        text = values.get(ub.DIALECTS[target].text, "")
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
FILTER_KEYS = ("number", "bulkId", "messageId", "status", "caller", "template", "entrance", "text", "since", "until")


def _when_arg(name: str, value: str, problems: dict[str, str]) -> float | None:
    """``2026-11-30``, ``2026-11-30T08:15`` or ``2026-11-30 08:15:00``, in UTC (the log's times are UTC)."""
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), pattern).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    problems[name] = "must be a date (2026-11-30) or a date and time (2026-11-30T08:15), in UTC"
    return None


def _known_statuses(view: str) -> set[str]:
    if view == "messages":
        return {*(s.upper() for s in STATES), *STATUS_GROUPS, *(st.name for st in STATUSES.values())}
    if view == "attempts":
        return {"OK", "ERROR"}
    return {s.upper() for s in JOB_STATES}


def _log_query() -> tuple[str, LogFilter, int, dict[str, str], list[str]]:
    """The view, filter and page of a log request (query parameters), with the problems found (parameter ->
    reason: shown beside the filter, nothing is queried) and notices (an unknown status: said, not blank)."""
    a = request.args
    problems: dict[str, str] = {}
    notices: list[str] = []
    view = a.get("view") or "messages"
    if view not in dict(VIEWS):
        problems["view"] = f"must be one of {', '.join(dict(VIEWS))}"
        view = "messages"
    try:
        page = int(a.get("page") or 1)
    except ValueError:
        page = 0
    if not 1 <= page <= 100000:
        problems["page"] = "must be a whole number from 1"
        page = 1
    v = {k: str(a.get(k) or "").strip()[:100] for k in FILTER_KEYS}
    since, until = _when_arg("since", v["since"], problems), _when_arg("until", v["until"], problems)
    if len(v["until"]) == 10 and until is not None:
        until += 86400  # a date alone means "to the end of that day"
    if since is not None and until is not None and until <= since:
        problems["until"] = "must be after since"
    ctx = bridge()
    if v["caller"] and v["caller"] not in ctx.config.callers:
        notices.append(f"caller {v['caller']!r} is not in this configuration (its old messages still show)")
    if v["template"] and v["template"] not in ctx.config.templates:
        notices.append(f"template {v['template']!r} is not in this configuration (its old messages still show)")
    if v["status"] and view != "dead" and v["status"].upper() not in _known_statuses(view):
        notices.append(f"status {v['status']!r} is not one the {view} view knows, so nothing matches; "
                       f"try one of {', '.join(sorted(_known_statuses(view))[:12])}…")
    if v["text"] and _settings().mask_text:
        notices.append("texts are masked (ui.mask_text), so the text search is off")
        v["text"] = ""
    f = LogFilter(v["number"], v["bulkId"], v["messageId"], v["status"], v["caller"], v["template"], v["entrance"],
                  v["text"], since, until)
    return view, f, page, problems, notices


def _log_view() -> LogView:
    ctx, ui = bridge(), _settings()
    return LogView(ctx.db, ctx.clock.now(), ui.mask_text, ui.mask_keep)


def _log_args(view: str, page: int | None = None) -> dict[str, Any]:
    """The current query's filter (as the user wrote it) for links: views, pages, the CSV export."""
    out: dict[str, Any] = {"view": view, **{k: request.args.get(k, "") for k in FILTER_KEYS}}
    if page:
        out["page"] = page
    return {k: v for k, v in out.items() if v}


@bp.get("/log")
def log() -> tuple[str, int]:
    view, f, page, problems, notices = _log_query()
    lv = _log_view()
    result = Page(view, [], page, False, 0) if problems else lv.page(view, f, page, _settings().log_page_size)
    groups = lv.totals_by_group(f) if view == "messages" and not problems else {}
    args = _log_args(view)
    ctx = bridge()
    return render_template(
        "log.html", view=view, views=VIEWS, f=f, args=request.args, result=result, columns=COLUMNS[view],
        main_columns=MAIN_COLUMNS.get(view), problems=problems, notices=notices, groups=groups,
        callers=sorted(ctx.config.callers), templates=sorted(ctx.config.templates),
        masked=_settings().mask_text, redriven=request.args.get("redriven", ""),
        view_urls={v: url_for("ui.log", **{**_log_args(v), "view": v}) for v, _ in VIEWS},
        csv_url=url_for("ui.log_csv", **{k: x for k, x in args.items() if k != "view"}),
        prev_url=url_for("ui.log", **args, page=page - 1) if page > 1 else None,
        next_url=url_for("ui.log", **args, page=page + 1) if result.has_next else None,
        log_data={"api": url_for("ui.api_log", **_log_args(view, page)), "interval": 2000}), 400 if problems else 200


def _refuse(problems: dict[str, str]) -> None:
    """A data request (JSON, CSV) with a bad filter: 400 naming the first parameter and its reason."""
    if problems:
        name, reason = next(iter(problems.items()))
        raise ApiError.bad_request(name, reason)


@bp.get("/api/log")
def api_log() -> Response:
    """One page of the log as JSON (the page's script polls it for status changes)."""
    view, f, page, problems, _ = _log_query()
    _refuse(problems)
    return jsonify(_log_view().page(view, f, page, _settings().log_page_size).to_dict())


@bp.get("/log.csv")
def log_csv() -> Response:
    """Every message the current filter matches, as CSV, streamed (texts masked as on the page)."""
    view, f, _, problems, _ = _log_query()
    _refuse(problems)
    lv, names = _log_view(), [n for n, _ in COLUMNS["messages"]]

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow([label for _, label in COLUMNS["messages"]])
        for i, row in enumerate(lv.export(f), 1):
            out.writerow([_csv_cell(row["cells"][n]) for n in names])
            if i % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    stamp = datetime.fromtimestamp(bridge().clock.now(), UTC).strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="smsbridge-messages-{stamp}.csv"'})


def _csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): ``=``, ``+``, ``-``, ``@`` lead with '."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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
