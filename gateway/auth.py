"""Caller authentication: query username/password, ``Authorization: Basic`` or ``App <key>``.

Passwords are stored as werkzeug password hashes (pbkdf2/scrypt, salted); API keys as SHA-256
(they are long random strings). A successful check is remembered for the process lifetime as an
HMAC of the presented secret under a per-process random key, so the slow hash runs once per
credential and the hot path stays fast; nothing reversible is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from .config import Caller
from .errors import Forbidden, Unauthorized


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="pbkdf2:sha256:600000")


def hash_api_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _check_api_key(stored: str, key: str) -> bool:
    return hmac.compare_digest(stored, hash_api_key(key))


class AuthorizationError(ValueError):
    """An ``Authorization`` header this parser cannot use; the message says why."""


@dataclass(frozen=True)
class Authorization:
    """A parsed ``Authorization`` header: ``scheme`` is ``"app"`` (``key``) or ``"basic"`` (``username``,
    ``password``)."""

    scheme: str
    key: str = ""
    username: str = ""
    password: str = ""


UNSUPPORTED = "Unsupported Authorization scheme: use Basic or App"
MALFORMED = "Malformed Basic credentials"


def parse_authorization(header: str) -> Authorization:
    """``App <key>`` or ``Basic <base64 user:password>`` (a missing colon means an empty password);
    AuthorizationError for another scheme, an empty value, or Basic that is not base64 of UTF-8."""
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "app" and value:
        return Authorization("app", key=value)
    if scheme == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            raise AuthorizationError(MALFORMED) from None
        return Authorization("basic", username=user, password=password)
    raise AuthorizationError(UNSUPPORTED)


def basic_username(header: str) -> str | None:
    """The user name of a Basic ``Authorization`` header (None for App keys and unreadable headers)."""
    try:
        parsed = parse_authorization(header)
    except AuthorizationError:
        return None
    return parsed.username if parsed.scheme == "basic" else None


def unauthorized(text: str = "Invalid login details") -> Unauthorized:
    return Unauthorized(text)


class Authenticator:
    """Resolves the caller of a request; instance state only (no globals)."""

    def __init__(self, callers: dict[str, Caller]):
        self.callers = callers
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        self._decoy = next((c.password_hash for c in callers.values() if c.password_hash), None)

    def _remember(self, kind: str, name: str, secret: str) -> bytes:
        return hmac.new(self._key, f"{kind}\0{name}\0{secret}".encode(), hashlib.sha256).digest()

    def check_password(self, username: str, password: str) -> Caller:
        caller = self.callers.get(username)
        if not password:
            raise unauthorized()
        if caller is None:
            # A wrong name costs what a wrong password costs (the same hash runs, its answer ignored), so the
            # time of a refusal does not tell which names exist.
            if self._decoy is not None:
                check_password_hash(self._decoy, password)
            raise unauthorized()
        token = self._remember("pw", username, password)
        if token in self._verified:
            return caller
        ok = False
        if caller.password_hash:
            ok = check_password_hash(caller.password_hash, password)
        elif caller.password is not None:
            ok = hmac.compare_digest(caller.password.encode(), password.encode())
        if not ok:
            raise unauthorized()
        with self._lock:
            self._verified.add(token)
        return caller

    def check_api_key(self, key: str) -> Caller:
        for caller in self.callers.values():
            if caller.api_key_hash and _check_api_key(caller.api_key_hash, key):
                return caller
            if caller.api_key is not None and hmac.compare_digest(caller.api_key.encode(), key.encode()):
                return caller
        raise unauthorized("Invalid API key")

    @staticmethod
    def login_name(authorization: str | None, username: str | None) -> str | None:
        """The caller name :meth:`from_request` checks a password for, given the same credentials (None for an
        API key, an unreadable header, or no name): what the login throttle counts. An empty header is absent
        here as there."""
        return basic_username(authorization) if authorization else username

    def guessing(self, authorization: str | None, username: str | None, password: str | None) -> bool:
        """Whether :meth:`from_request`, given the same credentials, checks a password it has not verified
        before (a guess as far as it knows; an API key is a SHA-256, no guess worth throttling in flight)."""
        if authorization:
            try:
                parsed = parse_authorization(authorization)
            except AuthorizationError:
                return False
            if parsed.scheme != "basic":
                return False
            username, password = parsed.username, parsed.password
        return bool(password) and self._remember("pw", username or "", password or "") not in self._verified

    def from_request(self, authorization: str | None, username: str | None, password: str | None) -> Caller:
        """The header wins when present (not empty); otherwise query (or form) credentials."""
        if authorization:
            try:
                parsed = parse_authorization(authorization)
            except AuthorizationError as exc:
                raise unauthorized(str(exc)) from None
            if parsed.scheme == "app":
                return self.check_api_key(parsed.key)
            return self.check_password(parsed.username, parsed.password)
        if username is None and password is None:
            raise unauthorized(
                "Missing credentials: give username and password parameters or an Authorization header"
            )
        return self.check_password(username or "", password or "")

    def require_scope(self, caller: Caller, scope: str) -> None:
        if scope not in caller.scopes:
            raise Forbidden(f"caller {caller.name!r} lacks the {scope!r} scope")
