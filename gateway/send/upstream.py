"""The Infobip client: one pooled urllib3 pool manager, connect/read timeouts, the bridge's own key.

Callers' credentials never travel upstream. Upstream failures become typed errors (gateway/errors.py)
carrying the attempts made: :class:`UpstreamUnreachable` (nothing was sent), :class:`UpstreamTimeout`
(no answer in time, or the connection dropped after the request was sent: the message may have been
accepted), :class:`UpstreamRefused` (a 4xx/5xx answer, with what the
upstream said) and :class:`UpstreamNonsense` (an answer the bridge cannot read); the edge maps them to
503, 504, 400/429/502 and 502 (gateway/entrances/errors.py).

The hot path does no per-request environment work: proxies (``HTTP(S)_PROXY``/``NO_PROXY``) and a CA bundle
(``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi's) are read once at start-up, ``~/.netrc`` is never
consulted, and each call goes straight to urllib3 (requests' own transport) with the fixed headers. Profiles
of the sync path (bench/run.py) showed requests' per-call preparation (URL re-parsing and re-encoding,
header dictionaries, cookie jars, hooks) at ~40 % of the bridge's own CPU: 800 µs of CPU per call against
440 µs through the pool directly. Redirects are not followed: an API answering 3xx is a misconfigured base URL.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import quote, urlencode, urlsplit

import certifi
import urllib3
from requests.utils import get_environ_proxies
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from ..config import Upstream
from ..errors import (
    Attempt,
    NotFound,
    UpstreamError,
    UpstreamNonsense,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from ..model import Submission, SubmissionResult
from ..wire.legacy import message_to_query, result_from_wire, submission_to_advanced
from ..wire.v3 import errors_from_v3, result_from_v3, submission_to_v3

USER_AGENT = "smsbridge/0.1"


@dataclass
class Reply:
    """An upstream answer: status and body bytes."""

    status_code: int
    content: bytes
    retry_after: float | None = None  # the Retry-After header, in seconds

    def json(self) -> Any:
        return json.loads(self.content)


def retry_after(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now, at most a day; None: absent or
    unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(86400.0, max(0.0, seconds)) if seconds == seconds else None


def pool_manager(base_url: str, maxsize: int) -> urllib3.PoolManager:
    """A pool for ``base_url``: through the environment's proxy for it (``NO_PROXY`` honoured), verifying TLS
    against ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` or certifi's bundle."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
    tls["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
    proxy = get_environ_proxies(base_url).get(urlsplit(base_url).scheme)
    if proxy:
        return urllib3.ProxyManager(proxy, num_pools=4, maxsize=maxsize, block=False, **tls)
    return urllib3.PoolManager(num_pools=4, maxsize=maxsize, block=False, **tls)


class UpstreamClient:
    def __init__(self, settings: Upstream, base_url: str):
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.name = settings.name
        self.host = urlsplit(self.base_url).netloc
        self.pool = pool_manager(self.base_url, settings.pool_size)
        # Direct (no proxy): calls go to the origin's connection pool with a path, which urllib3 re-encodes once;
        # through the pool manager it would parse and re-encode the whole URL twice per call.
        parts = urlsplit(self.base_url)
        self.prefix = parts.path.rstrip("/")
        self.origin = None if isinstance(self.pool, urllib3.ProxyManager) else \
            self.pool.connection_from_url(self.base_url)
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if settings.api_key:
            self.headers["Authorization"] = f"App {settings.api_key}"
        elif settings.username and settings.password:  # every API takes Basic; the query API also gets them as
            basic = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()  # parameters
            self.headers["Authorization"] = f"Basic {basic}"
        self.timeout = urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout)

    def close(self) -> None:
        self.pool.clear()

    def _call(self, method: str, path: str, api: str, attempts: list[Attempt], not_found: str | None = None,
              json_body: Any = None, timeout: urllib3.Timeout | None = None) -> Any:
        """A request whose JSON answer is returned; with ``not_found``, the upstream's 404 is a NotFound."""
        resp = self._request(method, path, api, attempts, json_body=json_body, timeout=timeout)
        if resp.status_code == 404 and not_found:
            raise NotFound(not_found)
        return self._answer(resp, attempts)

    def _request(self, method: str, path: str, api: str, attempts: list[Attempt],
                 headers: dict[str, str] | None = None, json_body: Any = None,
                 timeout: urllib3.Timeout | None = None) -> Reply:
        """One upstream request; transport failures become typed errors (see the module docstring)."""
        headers = headers or self.headers
        timeout = timeout or self.timeout
        body = None
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=False).encode()
            headers = {**headers, "Content-Type": "application/json"}
        started = time.perf_counter()

        def failed(reason: str) -> None:
            attempts.append(Attempt(api, None, (time.perf_counter() - started) * 1000, reason, self.name))

        try:
            if self.origin is not None:
                resp = self.origin.urlopen(method, self.prefix + path, body=body, headers=headers,
                                           timeout=timeout, retries=False, redirect=False, preload_content=True)
            else:
                resp = self.pool.request(method, self.base_url + path, body=body, headers=headers,
                                         timeout=timeout, retries=False, redirect=False, preload_content=True)
        except ProtocolError:  # the connection broke after the request went out: the upstream may hold it
            failed("connection dropped")
            raise UpstreamTimeout(
                f"Upstream {self.host} dropped the connection before answering; the message may have been "
                "accepted", attempts) from None
        except (ConnectTimeoutError, NewConnectionError, ProxyError, SSLError) as exc:
            if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
                failed("connect timeout")
                raise UpstreamUnreachable(
                    f"Upstream {self.host} could not be reached in time; nothing was sent", attempts) from None
            reason = "connection refused" if "refused" in str(exc).lower() else "connection failed"
            failed(reason)
            raise UpstreamUnreachable(
                f"Upstream {self.host} is unreachable ({reason}); nothing was sent", attempts) from None
        except ReadTimeoutError:
            failed("read timeout")
            raise UpstreamTimeout(
                f"Upstream {self.host} did not answer within {self.settings.read_timeout:g} s; the message may "
                "have been accepted: check the logs before sending again", attempts) from None
        except (HTTPError, OSError, ValueError) as exc:
            failed(type(exc).__name__)
            raise UpstreamError(f"Upstream request failed ({type(exc).__name__})", attempts) from None
        attempts.append(Attempt(api, resp.status, (time.perf_counter() - started) * 1000, upstream=self.name))
        return Reply(resp.status, resp.data, retry_after(resp.headers.get("Retry-After")) if resp.status >= 400 else None)

    def _answer(self, resp: Reply, attempts: list[Attempt]) -> Any:
        """The JSON body of a 2xx answer; anything else raises UpstreamRefused or UpstreamNonsense, the last
        attempt (this answer's) naming what went wrong."""
        try:
            body = resp.json()
        except (ValueError, json.JSONDecodeError):
            body = None
        status = resp.status_code
        if 200 <= status < 300 and body is not None:
            return body
        if 200 <= status < 300:
            self._nonsense(f"Upstream {self.host} answered {status} with a body that is not JSON", attempts)
        self._refused(status, body, attempts, resp.retry_after)

    def _refused(self, status: int, body: Any, attempts: list[Attempt], after: float | None = None) -> NoReturn:
        """Raise UpstreamRefused for a 4xx/5xx answer, keeping what the upstream said (legacy or v3 envelope)."""
        exc = (body or {}).get("requestError", {}).get("serviceException", {}) if isinstance(body, dict) else {}
        exc = exc if isinstance(exc, dict) else {}
        message_id, text, errors = exc.get("messageId"), exc.get("text"), exc.get("validationErrors")
        if not exc and isinstance(body, dict) and "errorCode" in body:  # the v3 envelope
            message_id, text, errors = body.get("errorCode"), body.get("description"), errors_from_v3(body)
        message_id = message_id if isinstance(message_id, str) else None
        text = text if isinstance(text, str) else None
        errors = errors if isinstance(errors, dict) else {}
        if attempts:  # the form metrics already label an answered failure with (bounded: no upstream text)
            attempts[-1].error = f"http {status}"
        if status in (401, 403):
            sentence = (f"Upstream {self.host} refused the bridge's own credentials (HTTP {status}): check "
                        "upstream.api_key in the bridge's configuration; your own credentials were fine")
        elif status == 400:
            sentence = f"Upstream rejected the request: {text or 'bad request'}"
        elif status == 429:
            sentence = "Upstream rate limit reached; retry later"
        else:
            sentence = f"Upstream {self.host} failed with HTTP {status}"
        raise UpstreamRefused(sentence, attempts, status=status, message_id=message_id, upstream_text=text,
                              errors=errors if status == 400 else {}, retry_after=after)

    @staticmethod
    def _nonsense(text: str, attempts: list[Attempt]) -> NoReturn:
        if attempts and attempts[-1].error is None:
            attempts[-1].error = "unreadable answer"
        raise UpstreamNonsense(text, attempts)

    def send(self, sub: Submission, api: str, attempts: list[Attempt] | None = None) -> SubmissionResult:
        """Send a validated submission with the ``query``, ``advanced`` or ``messages`` (v3) API."""
        attempts = [] if attempts is None else attempts
        if api == "messages":
            body = self._call("POST", "/sms/3/messages", api, attempts, json_body=submission_to_v3(sub))
            try:
                return result_from_v3(body)
            except (ValueError, TypeError, AttributeError):
                self._nonsense(f"Upstream {self.host} answered with an unexpected body", attempts)
        if api == "advanced":
            return self.post_advanced(submission_to_advanced(sub), attempts)
        merged: SubmissionResult | None = None
        for msg in sub.messages:
            params = message_to_query(sub, msg)
            if self.settings.username and self.settings.password:
                params = [("username", self.settings.username), ("password", self.settings.password), *params]
            body = self._call("GET", "/sms/1/text/query?" + urlencode(params), api, attempts)
            result = self._parsed(body, attempts)
            if merged is None:
                merged = result
            else:
                merged.messages.extend(result.messages)
        assert merged is not None
        return merged

    def post_advanced(self, body: dict[str, Any], attempts: list[Attempt]) -> SubmissionResult:
        """``POST /sms/2/text/advanced`` with a body already in wire form; the answer parsed."""
        return self._parsed(self._call("POST", "/sms/2/text/advanced", "advanced", attempts, json_body=body),
                            attempts)

    def log_conversion(self, upstream_message_id: str, attempts: list[Attempt] | None = None) -> str:
        """``POST /ct/1/log/end/<messageId>`` (conversion tracking's end tag); return the processKey.

        Authorised with the bridge's own key (or Basic with upstream.username/password when there is
        no key). The upstream's 404 (it does not know the message) is a NotFound."""
        attempts = [] if attempts is None else attempts
        headers = None
        if not self.settings.api_key and self.settings.username and self.settings.password:
            basic = base64.b64encode(f"{self.settings.username}:{self.settings.password}".encode()).decode()
            headers = {**self.headers, "Authorization": f"Basic {basic}"}
        path = "/ct/1/log/end/" + quote(upstream_message_id, safe="")
        resp = self._request("POST", path, "conversion", attempts, headers=headers)
        if resp.status_code == 404:
            raise NotFound(f"Upstream {self.host} does not know this message")
        body = self._answer(resp, attempts)
        key = body.get("processKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            self._nonsense(f"Upstream {self.host} answered without a processKey", attempts)
        return key

    def bulk(self, method: str, bulk_id: str, status: bool = False, body: dict[str, Any] | None = None,
             attempts: list[Attempt] | None = None) -> dict[str, Any]:
        """``GET|PUT /sms/1/bulks[/status]?bulkId=`` upstream (a scheduled bulk); its 404 is a NotFound."""
        attempts = [] if attempts is None else attempts
        path = "/sms/1/bulks" + ("/status" if status else "") + "?" + urlencode({"bulkId": bulk_id})
        answer = self._call(method, path, "bulks", attempts,
                            not_found=f"No scheduled bulk with bulkId {bulk_id!r}", json_body=body)
        if not isinstance(answer, dict):
            self._nonsense(f"Upstream {self.host} answered with an unexpected body", attempts)
        return answer

    def check(self, timeout: float | None = None) -> dict[str, Any]:
        """A real authenticated request (``GET /account/1/balance``, cheap and side-effect free): healthy only
        on a 2xx JSON answer; a 401/403 (the key refused) or a 404 (not an Infobip API) is not. Returns
        ``{"ok", "status" or "error", "ms"}``."""
        attempts: list[Attempt] = []
        started = time.perf_counter()
        limit = urllib3.Timeout(connect=timeout, read=timeout) if timeout is not None else None
        try:
            self._call("GET", "/account/1/balance", "probe", attempts, timeout=limit)
            out: dict[str, Any] = {"ok": True, "status": attempts[-1].http_status}
        except UpstreamError as exc:
            last = attempts[-1] if attempts else None
            out = {"ok": False, "status": last.http_status if last else None,
                   "error": (last.error if last else None) or type(exc).__name__}
        out["ms"] = round((time.perf_counter() - started) * 1000, 1)
        return out

    def _parsed(self, body: Any, attempts: list[Attempt]) -> SubmissionResult:
        try:
            return result_from_wire(body)
        except (ValueError, TypeError, AttributeError):
            self._nonsense(f"Upstream {self.host} answered with an unexpected body", attempts)
