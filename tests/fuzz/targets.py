"""One fuzz target per parser that reads input from outside, and the errors each may raise.

A target takes raw bytes (the first byte often picks an option: a charset, a content type) and feeds
them to the parser the way the entrance does. The rule: only the *documented* error types may escape
(``ApiError``/``ValidationFailed`` at the edges, ``ValueError`` where the API says so, Jinja's
``TemplateError`` for a template); anything else (``KeyError``, ``RecursionError``, ``TypeError``,
``UnicodeEncodeError``…) is a crash. Targets import no atheris: the corpus replay
(tests/test_fuzz_corpus.py) runs them as plain functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import TemplateError

from gateway.entrances.querystring import CHARSETS, parse_form, parse_query
from gateway.errors import ValidationFailed
from gateway.model import ApiError
from gateway.render import RenderError, kannel_to_jinja, make_environment
from gateway.reports.callbacks import _SAMPLE, KANNEL, report_fields
from gateway.sms.preview import analyse, sms_count
from gateway.urlbuilder import parse as parse_url
from gateway.validate import LANGUAGE_CODES, TRANSLITERATIONS, Limits, validate_submission
from gateway.wire import inbound, reports
from gateway.wire.jsonbody import loads
from gateway.wire.legacy import submission_from_advanced
from gateway.wire.preview import preview_body
from gateway.wire.v3 import submission_from_v3

NOW = datetime(2030, 1, 1, tzinfo=UTC)
_CHARSETS = sorted(CHARSETS)
_CONTENT_TYPES = (None, "application/json", "application/xml", "text/xml; charset=utf-8")
_LANGS = (None, *sorted(LANGUAGE_CODES))
_TRANSLITS = (None, *sorted(TRANSLITERATIONS))


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], Any]
    allowed: tuple[type[BaseException], ...]
    seeds: tuple[bytes, ...] = ()


def _pick(data: bytes, options: tuple[Any, ...] | list[Any]) -> tuple[Any, bytes]:
    if not data:
        return options[0], b""
    return options[data[0] % len(options)], data[1:]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass") if _valid(data) else data.decode("utf-8", "replace")


def _valid(data: bytes) -> bool:
    try:
        data.decode("utf-8", "surrogatepass")
        return True
    except UnicodeDecodeError:
        return False


def query(data: bytes) -> None:
    charset, rest = _pick(data, _CHARSETS)
    params = parse_query(rest, charset)
    for name, value in params.items():  # the decoded parameters are str, once decoded
        assert isinstance(name, str) and isinstance(value, str)
    parse_form(rest, charset)


def _json_submission(parse: Callable[[Any], Any]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        sub = parse(loads(data))
        validate_submission(sub, Limits(), flat=False, now=NOW)
        json.dumps([m.text for m in sub.messages], ensure_ascii=False).encode("utf-8")  # encodable
    return run


def preview_json(data: bytes) -> None:
    body = preview_body(loads(data))
    json.dumps(body, ensure_ascii=False).encode("utf-8")


def report_push(data: bytes) -> None:
    ctype, rest = _pick(data, _CONTENT_TYPES)
    for r in reports.reports_from_push(rest, ctype):
        json.dumps(reports.report_v1(r), ensure_ascii=False).encode("utf-8")  # what the relay writes


def inbound_push(data: bytes) -> None:
    xml, rest = _pick(data, (False, True))
    msgs = inbound.parse_xml(rest, NOW) if xml else inbound.parse_json(loads(rest), NOW)
    json.dumps(inbound.inbox_body(msgs, 0), ensure_ascii=False).encode("utf-8")


def url_builder(data: bytes) -> None:
    parsed = parse_url(_text(data), "http://127.0.0.1:8080")
    assert parsed is not None


def kannel(data: bytes) -> None:
    percent, rest = _pick(data, ("%", "%25"))
    text = _text(rest)
    source, _ = kannel_to_jinja(text, KANNEL, percent)
    if "%" not in text and "{" not in text and "}" not in text:
        assert source == text, "text without escapes must pass through unchanged"
    env = make_environment(url=percent == "%25")
    env.from_string(source).render(report_fields(_SAMPLE))


def sms_preview(data: bytes) -> None:
    lang, rest = _pick(data, _LANGS)
    translit, rest = _pick(rest, _TRANSLITS)
    text = _text(rest)
    a = analyse(text, lang, translit)
    assert a.message_count == len(a.segments) or not text, "message_count must match the segments"
    assert sms_count(text, lang, translit) == a.message_count


_SEND = b'{"messages":[{"destinations":[{"to":"41793026727","messageId":"m1"}],"from":"InfoSMS","text":"Hi"}]}'
_V3 = b'{"messages":[{"destinations":[{"to":"41793026727"}],"sender":"InfoSMS","content":{"text":"Hi"}}]}'
_REPORT = (b'{"results":[{"messageId":"m1","to":"41793026727","status":{"groupId":3,"groupName":"DELIVERED",'
           b'"id":5,"name":"DELIVERED_TO_HANDSET"},"error":{"id":0,"name":"NO_ERROR"},"smsCount":1}]}')
_REPORT_XML = (b'<?xml version="1.0" encoding="UTF-8"?><reportResponse><results><result><messageId>m1</messageId>'
               b'<status><groupId>3</groupId><name>DELIVERED_TO_HANDSET</name></status></result></results>'
               b'</reportResponse>')
_MO = b'{"results":[{"messageId":"m1","from":"41793026727","to":"447491163443","text":"INFO hi","smsCount":1}]}'
_MO_XML = (b'<MOReportResponse><results><results><messageId>m1</messageId><from>41793026727</from>'
           b'<to>447491163443</to><text>INFO</text></results></results></MOReportResponse>')

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("query", query, (ApiError,), (b"\x00username=demo&password=x&to=41793026727&text=Hello+%C3%BC",
                                         b"\x05to=1&text=%FC&charset=iso-8859-1")),
    Target("json_advanced", _json_submission(submission_from_advanced), (ApiError, ValidationFailed), (_SEND,)),
    Target("json_v3", _json_submission(submission_from_v3), (ApiError, ValidationFailed), (_V3,)),
    Target("json_preview", preview_json, (ApiError, ValidationFailed, ValueError),
           (b'{"text":"Hello \\u00fc","languageCode":"TR"}',)),
    Target("report_push", report_push, (ApiError,), (b"\x01" + _REPORT, b"\x02" + _REPORT_XML)),
    Target("inbound_push", inbound_push, (ApiError,), (b"\x00" + _MO, b"\x01" + _MO_XML)),
    Target("url_builder", url_builder, (ValueError,),
           (b"http://127.0.0.1:8080/t/alarm?username=demo&password=x&phone=%phoneNumber%&msg=%message%",
            b"https://api.infobip.com/sms/1/text/query?username=u&password=p&to=$CONTACTPAGER$&text=x")),
    Target("kannel", kannel, (TemplateError, RenderError), (b"\x00http://pbx/dlr?id=%I&s=%d&to=%p&t=%%",)),
    Target("sms_preview", sms_preview, (ValueError,), (b"\x00\x00Hello", b"\x05\x01\xc3\xbc\xc3\xb1 \xf0\x9f\x98\x80")),
)}


def check(target: Target, data: bytes) -> None:
    """Run ``target`` on ``data``; an error of an allowed type is fine, anything else propagates."""
    try:
        target.run(data)
    except target.allowed:
        pass
