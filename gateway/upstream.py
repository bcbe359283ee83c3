"""The Infobip client: one pooled ``requests.Session``, connect/read timeouts, the bridge's own key.

Callers' credentials never travel upstream. Upstream failures become an ApiError the caller can act
on: 503 when the upstream cannot be reached, 504 when it did not answer in time (the message may
have been accepted: check the logs before retrying), 502 when the bridge's own upstream credentials
or the upstream's answer are wrong, the upstream's 400/429 passed on.

The hot path does no per-request environment work: proxies (``HTTP(S)_PROXY``/``NO_PROXY``) and a CA bundle
(``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) are read once at start-up, ``~/.netrc`` is never consulted (it
would replace the bridge's own ``Authorization``), and each request is prepared directly with the fixed
headers and sent through the pooled session. The profile of the sync path (bench/run.py) showed requests'
per-call merging of environment, netrc and session settings as half of the bridge's own CPU time.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .config import Upstream
from .model import ApiError, Submission, SubmissionResult
from .wire import message_to_query, result_from_wire, submission_to_advanced
from .wire_v3 import errors_from_v3, result_from_v3, submission_to_v3

USER_AGENT = "smsbridge/0.1"


@dataclass
class Attempt:
    """What one upstream call did (kept for the record and metrics)."""

    api: str
    http_status: int | None
    duration_ms: float
    error: str | None = None


class UpstreamClient:
    def __init__(self, settings: Upstream, base_url: str):
        self.settings = settings
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=settings.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if settings.api_key:
            self.session.headers["Authorization"] = f"App {settings.api_key}"
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        # Environment resolved once (see the module docstring), then applied to every request as is.
        self.session.trust_env = False
        self.proxies = requests.utils.get_environ_proxies(self.base_url)
        self.verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.headers = dict(self.session.headers)

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, api: str, attempts: list[Attempt], not_found: str | None = None,
              **kw: Any) -> Any:
        """A request whose JSON answer is returned; with ``not_found``, the upstream's 404 stays a 404."""
        resp = self._request(method, path, api, attempts, **kw)
        if resp.status_code == 404 and not_found:
            raise ApiError(404, "NOT_FOUND", not_found)
        return self._answer(resp)

    def _request(self, method: str, path: str, api: str, attempts: list[Attempt],
                 headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        """One upstream request; transport failures become 503/504/502 (see the module docstring)."""
        url = self.base_url + path
        started = time.perf_counter()
        try:
            prepared = requests.PreparedRequest()
            prepared.prepare(method=method, url=url, headers=headers or self.headers, **kw)
            resp = self.session.send(prepared, timeout=self.timeout, allow_redirects=True, proxies=self.proxies,
                                     verify=self.verify, stream=False, cert=None)
        except requests.ConnectTimeout:
            attempts.append(Attempt(api, None, (time.perf_counter() - started) * 1000, "connect timeout"))
            raise ApiError(
                503, "SERVICE_UNAVAILABLE", f"Upstream {self.host} could not be reached in time; nothing was sent"
            ) from None
        except requests.ReadTimeout:
            attempts.append(Attempt(api, None, (time.perf_counter() - started) * 1000, "read timeout"))
            raise ApiError(
                504,
                "GATEWAY_TIMEOUT",
                f"Upstream {self.host} did not answer within {self.settings.read_timeout:g} s; the message may "
                "have been accepted: check the logs before sending again",
            ) from None
        except requests.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "connection failed"
            attempts.append(Attempt(api, None, (time.perf_counter() - started) * 1000, reason))
            raise ApiError(
                503, "SERVICE_UNAVAILABLE", f"Upstream {self.host} is unreachable ({reason}); nothing was sent"
            ) from None
        except requests.RequestException as exc:
            attempts.append(Attempt(api, None, (time.perf_counter() - started) * 1000, type(exc).__name__))
            raise ApiError(502, "BAD_GATEWAY", f"Upstream request failed ({type(exc).__name__})") from None
        attempts.append(Attempt(api, resp.status_code, (time.perf_counter() - started) * 1000))
        return resp

    def _answer(self, resp: requests.Response) -> Any:
        try:
            body = resp.json()
        except (ValueError, json.JSONDecodeError):
            body = None
        status = resp.status_code
        if 200 <= status < 300 and body is not None:
            return body
        exc = (body or {}).get("requestError", {}).get("serviceException", {}) if isinstance(body, dict) else {}
        text = exc.get("text") if isinstance(exc, dict) else None
        if status in (401, 403):
            raise ApiError(
                502,
                "BAD_GATEWAY",
                f"Upstream {self.host} refused the bridge's own credentials (HTTP {status}): check upstream.api_key "
                "in the bridge's configuration; your own credentials were fine",
            )
        if status == 400:
            errors = exc.get("validationErrors") if isinstance(exc, dict) else None
            if not exc and isinstance(body, dict) and "errorCode" in body:  # the v3 envelope
                text, errors = body.get("description"), errors_from_v3(body)
            raise ApiError(
                400, "BAD_REQUEST", f"Upstream rejected the request: {text or 'bad request'}",
                errors if isinstance(errors, dict) else {},
            )
        if status == 429:
            raise ApiError(429, "TOO_MANY_REQUESTS", "Upstream rate limit reached; retry later")
        if 200 <= status < 300:
            raise ApiError(502, "BAD_GATEWAY", f"Upstream {self.host} answered {status} with a body that is not JSON")
        raise ApiError(502, "BAD_GATEWAY", f"Upstream {self.host} failed with HTTP {status}")

    def send(self, sub: Submission, api: str, attempts: list[Attempt] | None = None) -> SubmissionResult:
        """Send a validated submission with the ``query``, ``advanced`` or ``messages`` (v3) API."""
        attempts = [] if attempts is None else attempts
        if api == "messages":
            body = self._call("POST", "/sms/3/messages", api, attempts, json=submission_to_v3(sub))
            try:
                return result_from_v3(body)
            except (ValueError, TypeError, AttributeError):
                raise ApiError(502, "BAD_GATEWAY", f"Upstream {self.host} answered with an unexpected body") from None
        if api == "advanced":
            body = self._call("POST", "/sms/2/text/advanced", api, attempts, json=submission_to_advanced(sub))
            return self._parsed(body)
        merged: SubmissionResult | None = None
        for msg in sub.messages:
            params = message_to_query(sub, msg)
            if self.settings.username and self.settings.password:
                params = [("username", self.settings.username), ("password", self.settings.password), *params]
            body = self._call("GET", "/sms/1/text/query?" + urlencode(params), api, attempts)
            result = self._parsed(body)
            if merged is None:
                merged = result
            else:
                merged.messages.extend(result.messages)
        assert merged is not None
        return merged

    def log_conversion(self, upstream_message_id: str, attempts: list[Attempt] | None = None) -> str:
        """``POST /ct/1/log/end/<messageId>`` (conversion tracking's end tag); return the processKey.

        Authorised with the bridge's own key (or Basic with upstream.username/password when there is
        no key). The upstream's 404 (it does not know the message) stays a 404."""
        attempts = [] if attempts is None else attempts
        headers = None
        if not self.settings.api_key and self.settings.username and self.settings.password:
            basic = base64.b64encode(f"{self.settings.username}:{self.settings.password}".encode()).decode()
            headers = {**self.headers, "Authorization": f"Basic {basic}"}
        path = "/ct/1/log/end/" + quote(upstream_message_id, safe="")
        resp = self._request("POST", path, "conversion", attempts, headers=headers)
        if resp.status_code == 404:
            raise ApiError(404, "NOT_FOUND", f"Upstream {self.host} does not know this message")
        body = self._answer(resp)
        key = body.get("processKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ApiError(502, "BAD_GATEWAY", f"Upstream {self.host} answered without a processKey")
        return key
    def bulk(self, method: str, bulk_id: str, status: bool = False, body: dict[str, Any] | None = None,
             attempts: list[Attempt] | None = None) -> dict[str, Any]:
        """``GET|PUT /sms/1/bulks[/status]?bulkId=`` upstream (a scheduled bulk); 404 passed on."""
        path = "/sms/1/bulks" + ("/status" if status else "") + "?" + urlencode({"bulkId": bulk_id})
        answer = self._call(method, path, "bulks", [] if attempts is None else attempts,
                            not_found=f"No scheduled bulk with bulkId {bulk_id!r}", json=body)
        if not isinstance(answer, dict):
            raise ApiError(502, "BAD_GATEWAY", f"Upstream {self.host} answered with an unexpected body")
        return answer

    def _parsed(self, body: Any) -> SubmissionResult:
        try:
            return result_from_wire(body)
        except (ValueError, TypeError, AttributeError):
            raise ApiError(502, "BAD_GATEWAY", f"Upstream {self.host} answered with an unexpected body") from None
