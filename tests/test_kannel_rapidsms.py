"""A real application written for Kannel, end to end: RapidSMS 2.2's Kannel backend (``rapidsms.backends.kannel``,
from PyPI) in a Django app served by waitress on loopback, its ``sendsms_url`` pointed at the bridge.

It sends (its ``KannelBackend`` GETs ``/cgi-bin/sendsms`` with ``dlr-mask=31`` and its own ``dlr-url``), receives
its delivery reports (its ``DeliveryReportView`` stores one ``DeliveryReport`` per Kannel event) and receives an
inbound message (an inbound rule with Kannel's ``get-url`` from RapidSMS's docs reaches its ``KannelBackendView``,
which hands it to the router; ``rapidsms.contrib.messagelog`` records it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import waitress

from tests.conftest import Sandbox, running_sandbox
from tests.helpers import wait_for

django = pytest.importorskip("django")
pytest.importorskip("rapidsms")

TOKEN = "rapidsms-inbound-token-81f3"


class _Lazy:
    """A WSGI app set after the server knows its port (the backend's settings need that port)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def rapidsms_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """RapidSMS with its Kannel backend on a loopback port; ``configure(sendsms_url)`` points it at a bridge."""
    from django.conf import settings

    # The browser tests' Playwright keeps an asyncio loop on this (the main) thread for the whole session, and
    # Django refuses database calls where a loop runs; Django's own switch for that case (nothing here is async)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    lazy = _Lazy()
    server = waitress.create_server(lazy, host="127.0.0.1", port=0, threads=4)
    port = int(server.effective_port)  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    db = Path(tmp_path_factory.mktemp("rapidsms")) / "rapidsms.sqlite3"
    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="test-only", ALLOWED_HOSTS=["127.0.0.1"], USE_TZ=True,
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rapidsms",
                            "rapidsms.backends.kannel", "rapidsms.contrib.messagelog"],
            ROOT_URLCONF="rapidsms.backends.kannel.urls", MIDDLEWARE=[],
            RAPIDSMS_ROUTER="rapidsms.router.blocking.BlockingRouter", INSTALLED_BACKENDS={},
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
            TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        )
        django.setup()
    else:
        settings.DATABASES["default"]["NAME"] = str(db)
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    lazy.app = get_wsgi_application()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def configure(sendsms_url: str) -> None:
        settings.INSTALLED_BACKENDS = {"kannel-backend": {
            "ENGINE": "rapidsms.backends.kannel.KannelBackend", "sendsms_url": sendsms_url,
            "sendsms_params": {"from": "InfoSMS", "username": "demo", "password": "demo"},
            "coding": 0, "charset": "ascii", "encode_errors": "ignore", "delivery_report_url": base}}

    try:
        yield {"base": base, "configure": configure}
    finally:
        server.close()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def dlr_sandbox() -> Iterator[Sandbox]:
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as sandbox:
        yield sandbox


def test_rapidsms_kannel_backend_sends_gets_its_reports_and_receives(make_bridge, dlr_sandbox, rapidsms_site):
    from rapidsms.backends.kannel.models import DeliveryReport
    from rapidsms.contrib.messagelog.models import Message as Logged
    from rapidsms.router import lookup_connections, send

    dlr_sandbox.reset()
    # the get-url of RapidSMS's Kannel docs ("sms-service" for kannel-backend), verbatim
    get_url = rapidsms_site["base"] + "/backend/kannel/?id=%p&text=%a&charset=%C&coding=%c"
    bridge = make_bridge(lambda raw: raw.update(inbound={"token": TOKEN, "rules": [], "default": {
        "name": "rapidsms", "caller": "demo", "forward": get_url}}), upstream_url=dlr_sandbox.url)
    rapidsms_site["configure"](bridge.url + "/cgi-bin/sendsms")

    # it sends: one SMS to two numbers, through the bridge to the upstream
    connections = lookup_connections("kannel-backend", ["41793026727", "41793026728"])
    send("Hello from RapidSMS", connections)
    sent = wait_for(lambda: [m for m in dlr_sandbox.messages() if m["text"] == "Hello from RapidSMS"] or None,
                    what="the upstream got the message")
    assert sorted(m["to"] for m in sent) == ["41793026727", "41793026728"] and sent[0]["from"] == "InfoSMS"

    # it receives its delivery reports: 8 (SMSC submit), 4 (buffered), 1 (delivered) per number
    wait_for(lambda: DeliveryReport.objects.count() == 6, timeout=20, what="six DeliveryReport rows in RapidSMS")
    rows = list(DeliveryReport.objects.order_by("id"))
    assert sorted((r.identity, r.status) for r in rows) == sorted(
        (to, s) for to in ("41793026727", "41793026728") for s in (1, 4, 8))
    assert {r.smsc for r in rows} == {"infobip"} and {r.message_id for r in rows} == {rows[0].message_id}
    assert {r.status_text for r in rows if r.status == 8} == {"ACK/"}
    assert all("stat:DELIVRD" in r.status_text for r in rows if r.status == 1)
    assert {r.sms_id for r in rows if r.status == 1} == {m["messageId"] for m in sent}

    # it receives an inbound message, through the bridge's inbound rule speaking Kannel's get-url
    r = bridge.post(f"/hooks/inbound/{TOKEN}", json={"results": [{
        "messageId": "mo-rapidsms-1", "from": "41793026727", "to": "41793026834", "text": "hello   rapid sms",
        "cleanText": "hello rapid sms", "keyword": "HELLO", "receivedAt": "2026-11-30T06:00:00.000+0000",
        "smsCount": 1}], "messageCount": 1, "pendingMessageCount": 0})
    assert r.status_code == 200, r.text
    got = wait_for(lambda: list(Logged.objects.filter(direction=Logged.INCOMING)) or None, what="RapidSMS's log")
    assert [(m.text, m.connection.identity) for m in got] == [("hello rapid sms", "41793026727")]
