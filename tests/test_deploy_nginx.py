"""deploy/nginx/smsbridge.conf, run by Debian's nginx with a throwaway certificate, driven over HTTPS
(issue 15 item 5), in front of:

- ``postgresql``: two separate bridge processes (each its own port, as on two hosts) on one PostgreSQL
  database - the production topology;
- ``sqlite-workers``: one ``--workers 2`` bridge on one SQLite file (one host).

The conf runs as shipped but for ports and certificate paths. nginx reaches the bridges from 127.0.0.1, the
one trusted proxy (``server.trusted_proxies``, as for nginx on the bridges' host); clients that must be told
apart from it connect from the loopback aliases 127.0.0.3 and 127.0.0.4, to nginx or (untrusted) directly. The sandbox runs as its own process, trusting the throwaway certificate, and pushes
delivery reports through nginx over HTTPS to ``server.public_url`` (``https://127.0.0.1:<nginx>/smsbridge``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from infobip_api_client import ApiClient, Configuration, SmsApi
from infobip_api_client.models import SmsRequest
from requests.adapters import HTTPAdapter

from tests import pghelp
from tests.conftest import DEMO, ROOT
from tests.helpers import free_port, wait_for
from tests.official_client import message
from tests.receiver import Receiver
from tests.workers import KILL_WINDOW, QUEUED, SandboxProcess, WorkersBridge, alive, workers_config

PROXY = "127.0.0.1"  # nginx on the bridges' host: its address towards them, the one trusted proxy
CLIENT, OTHER_CLIENT = "127.0.0.3", "127.0.0.4"  # clients' addresses (loopback aliases), never trusted
UI_KEY = "one-cookie-key-for-every-bridge-0123456789"  # several bridges share ui.secret_key (docs/deployment.md)


def nginx_binary() -> str:
    """Debian's nginx; installed with apt-get when running as root and missing; else the test is skipped."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("nginx is not installed and this is not root with apt-get (apt-get install nginx-light)")
    for cmd in (["apt-get", "install", "-y", "nginx-light"], ["apt-get", "update"],
                ["apt-get", "install", "-y", "nginx-light"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if cmd[1] == "install" and out.returncode == 0:
            break
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        pytest.skip(f"nginx could not be installed: {out.stderr[-500:]}")
    return found


def certificate(d: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (its own CA for the clients)."""
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def render(site: str, d: Path, port: int, bridge_ports: list[int], cert: Path, key: Path) -> str:
    """deploy/nginx/smsbridge.conf with the test's ports, certificate and proxy source address only."""
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*$", site, re.M)
    assert len(servers) == 2, "deploy/nginx/smsbridge.conf changed shape: adjust the test"
    for line, bport in zip(servers, bridge_ports, strict=False):
        site = site.replace(line, re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{bport}", line))
    for line in servers[len(bridge_ports):]:
        site = site.replace(line + "\n", "")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site = site.replace("/etc/ssl/smsbridge/fullchain.pem", str(cert)).replace("/etc/ssl/smsbridge/privkey.pem",
                                                                               str(key))
    (d / "smsbridge.conf").write_text(site)
    tmp = d / "tmp"
    tmp.mkdir()
    tmp.chmod(0o777)  # nginx's workers (nobody when the master is root) buffer bodies there
    return f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    include {d}/smsbridge.conf;
}}
"""


@dataclass
class Topology:
    kind: str
    sandbox: SandboxProcess
    receiver: Receiver
    bridges: list[WorkersBridge]
    url: str  # https://127.0.0.1:<nginx>
    ca: str
    dir: Path
    restart: Callable[[], None] = lambda: None  # restarts the killed bridge (PostgreSQL: a new process)
    extra: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return "".join(b.text() for b in self.bridges)

    def errors(self) -> str:
        return f"\n--- nginx error.log ---\n{(self.dir / 'error.log').read_text()[-3000:]}" \
               f"\n--- bridges ---\n{self.text()[-3000:]}"

    def get(self, path: str, session: requests.Session | None = None, **kw) -> requests.Response:
        return (session or requests).get(self.url + path, verify=self.ca, timeout=30, **kw)

    def victim(self) -> int:
        """The pid the kill test kills: bridge A (PostgreSQL) or worker 0 (SQLite)."""
        return self.bridges[0].proc.pid if self.kind == "postgresql" else self.bridges[0].worker_pids()[0]


class _From(HTTPAdapter):
    """Connect from a chosen local address (a second client in front of nginx)."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kwargs)


def client_from(source: str) -> requests.Session:
    s = requests.Session()
    s.mount("https://", _From(source))
    s.mount("http://", _From(source))
    return s


def _bridge_config(d: Path, sandbox_url: str, public: str, store: dict[str, Any], name: str) -> Path:
    path = workers_config(d, sandbox_url, store={**store, "lease_margin": 2}, name=name, threads=6,
                          trusted_proxies=[PROXY], public_url=public)
    raw = yaml.safe_load(path.read_text())
    raw["ui"].update(secret_key=UI_KEY, secure_cookie=True)  # behind TLS: the cookie only over https
    raw["outbox"].update(connect_timeout=1, read_timeout=2)  # short leases: the killed bridge's come back in 5 s
    raw["auth"]["first_delay"] = 60  # a lockout outlasts the lockout test
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module", params=["postgresql", "sqlite-workers"])
def topology(request, tmp_path_factory) -> Iterator[Topology]:
    binary = nginx_binary()
    dbs = pghelp.databases() if request.param == "postgresql" else None
    make_db = next(dbs) if dbs else None  # skips (or fails under SMSBRIDGE_REQUIRE_POSTGRES=1) without a server
    d = tmp_path_factory.mktemp("nginx")
    cert, key = certificate(d)
    receiver = Receiver().start()
    sandbox = SandboxProcess(d, ca=cert)  # pushes reports through nginx over HTTPS
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    bdir = tmp_path_factory.mktemp("bridges")
    bridges: list[WorkersBridge] = []
    proc = None
    try:
        if make_db:  # two bridges, as on two hosts: separate processes, ports, configs, one database
            db = make_db()
            ports = [free_port(), free_port()]
            configs = [_bridge_config(bdir, sandbox.url, url + "/smsbridge", {"url": db}, f"bridge{i}.yaml")
                       for i in range(2)]
            bridges += [WorkersBridge(configs[i], None, port=ports[i], log_name=f"bridge{i}.log") for i in range(2)]
        else:
            cfg = _bridge_config(bdir, sandbox.url, url + "/smsbridge", {"path": str(bdir / "bridge.db")},
                                 "config.yaml")
            bridges.append(WorkersBridge(cfg, workers=2))
            ports = [bridges[0].port]
        (d / "nginx.conf").write_text(render((ROOT / "deploy/nginx/smsbridge.conf").read_text(), d, port, ports,
                                             cert, key))
        proc = subprocess.Popen([binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        topo = Topology(request.param, sandbox, receiver, bridges, url, str(cert), d)
        if make_db:
            def restart() -> None:  # bridge A again, on its port (nginx's upstream line names it)
                bridges.append(WorkersBridge(configs[0], None, port=ports[0], log_name="bridge0.log"))
            topo.restart = restart
        wait_for(lambda: proc.poll() is not None or _answers(topo), timeout=30, what="nginx")
        assert proc.poll() is None, f"nginx exited: {proc.stderr.read()}{topo.errors()}"
        yield topo
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGQUIT)  # graceful stop
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for b in bridges:
            b.stop()
        sandbox.stop()
        receiver.close()
        if dbs:
            next(dbs, None)  # drops the database


def _answers(topo: Topology) -> bool:
    try:
        return topo.get("/readyz").status_code == 200
    except requests.RequestException:
        return False


def _access_line(topo: Topology, request_id: str) -> str:
    def find() -> str | None:
        return next((ln for ln in topo.text().splitlines() if "smsbridge.access" in ln
                     and f"[{request_id}]" in ln), None)
    return wait_for(find, timeout=10, what=f"the access line of {request_id}")


def test_sends_over_https_log_the_real_client_address(topology):
    t = topology
    s = client_from(CLIENT)
    for n in range(4):  # round robin: every bridge logs the client's address, none the proxy's
        r = t.get("/sms/1/text/query", s, params={**DEMO, "from": "InfoSMS", "to": "41793026727",
                                                  "text": f"via nginx {n}"},
                  headers={"X-Request-Id": f"via-nginx-{n}", "X-Forwarded-For": "203.0.113.7"})  # a client's claim
        assert r.status_code == 200, r.text + t.errors()
        assert r.json()["messages"][0]["status"]["groupName"] == "PENDING"
        line = _access_line(t, f"via-nginx-{n}")
        # nginx appends its peer to the client's header; the bridge believes only that last hop
        assert f" {CLIENT} GET /sms/1/text/query" in line and "203.0.113.7" not in line, line
    direct = s.get(f"http://127.0.0.1:{t.bridges[-1].port}/readyz", timeout=10,
                   headers={"X-Request-Id": "direct", "X-Forwarded-For": "198.51.100.9"})
    assert direct.status_code == 200
    line = _access_line(t, "direct")
    assert f" {CLIENT} GET /readyz" in line and "198.51.100.9" not in line, line  # untrusted peer: ignored


def test_failed_logins_lock_out_the_client_address_not_the_proxy(topology):
    t = topology
    attacker = client_from(CLIENT)
    refused_in_a_row = 0
    for i in range(40):  # a new name each time: only the address's count grows (the cluster's, in the store)
        r = t.get("/sms/1/text/query", attacker, params={"username": f"guess{i}", "password": "x", "from": "InfoSMS",
                                                          "to": "41793026727", "text": "guess"})
        assert r.status_code in (401, 429), r.text
        refused_in_a_row = refused_in_a_row + 1 if r.status_code == 429 else 0
        if refused_in_a_row == 4:  # locked out on every bridge process (round robin: each refuses it)
            break
    assert refused_in_a_row == 4, t.errors()
    other = client_from(OTHER_CLIENT)
    for n in range(4):  # the same nginx (the same proxy address), another client: not locked out anywhere
        r = t.get("/sms/1/text/query", other, params={**DEMO, "from": "InfoSMS", "to": "41793026727",
                                                      "text": f"ok {n}"})
        assert r.status_code == 200, r.text


def test_admin_ui_links_carry_the_prefix_and_the_https_origin(topology):
    t = topology
    r = t.get("/smsbridge/ui/", allow_redirects=False)
    assert r.status_code in (302, 303), r.text + t.errors()
    assert r.headers["Location"].replace(t.url, "").startswith("/smsbridge/ui/login"), r.headers["Location"]
    page = t.get("/smsbridge/ui/login")
    assert page.status_code == 200
    assert 'action="/smsbridge/ui/login"' in page.text and 'href="/smsbridge/ui/static/ui.css' in page.text, page.text
    at_root = t.get("/ui/login")
    assert 'action="/ui/login"' in at_root.text  # the root location sends an empty prefix


def test_admin_login_under_the_prefix_holds_on_every_bridge(topology):
    t = topology
    s = requests.Session()
    page = s.get(t.url + "/smsbridge/ui/login", params={"next": "/ui/log"}, timeout=30, verify=t.ca)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = s.post(t.url + "/smsbridge/ui/login", data={"csrf_token": token, "next": "/ui/log", "username": "admin",
                                                    "password": "admin"}, allow_redirects=False, timeout=30, verify=t.ca)
    assert r.status_code in (302, 303) and r.headers["Location"].endswith("/smsbridge/ui/log"), r.text + t.errors()
    assert "Path=/smsbridge/ui" in r.headers["Set-Cookie"] and "Secure" in r.headers["Set-Cookie"], \
        r.headers["Set-Cookie"]
    for _ in range(8):  # requests land on every bridge: all honour the session (one key, one store)
        got = s.get(t.url + "/smsbridge/ui/log", allow_redirects=False, timeout=30, verify=t.ca)
        assert got.status_code == 200, (got.status_code, got.headers.get("Location"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', got.text).group(1)
    out = s.post(t.url + "/smsbridge/ui/logout", data={"csrf_token": token}, allow_redirects=False, timeout=30,
                 verify=t.ca)
    assert out.status_code in (302, 303)
    for _ in range(4):  # revoked everywhere
        assert s.get(t.url + "/smsbridge/ui/log", allow_redirects=False, timeout=30, verify=t.ca).status_code in (302, 303)


def _reports(receiver: Receiver) -> dict[str, list[str]]:
    """messageId -> the paths its reports were POSTed to."""
    out: dict[str, list[str]] = {}
    for r in receiver.snapshot():
        for result in json.loads(r.body)["results"]:
            out.setdefault(result["messageId"], []).append(r.path)
    return out


def test_reports_come_back_through_nginx_and_are_relayed_once(topology):
    t = topology
    ids = []
    for n, who in enumerate((DEMO, QUEUED, DEMO, QUEUED)):  # sync and queued, through every bridge
        r = t.get("/sms/1/text/query", params={**who, "from": "InfoSMS", "to": "41793026834", "text": f"report {n}",
                                               "notifyUrl": t.receiver.url("/dlr-one")})
        assert r.status_code == 200, r.text + t.errors()
        ids.append(r.json()["messages"][0]["messageId"])
    wait_for(lambda: set(ids) <= set(_reports(t.receiver)), timeout=30, interval=0.1, what="the reports")
    got = _reports(t.receiver)
    assert all(got[i] == ["/dlr-one"] for i in ids), got
    # the upstream was told the public https origin and the prefix, and pushed through nginx
    told = {m["messageId"]: m["notifyUrl"] for m in t.sandbox.messages() if m["messageId"] in ids}
    assert all(u.startswith(t.url + "/smsbridge/hooks/dlr/") for u in told.values()), told
    assert "POST /smsbridge/hooks/dlr/" in (t.dir / "access.log").read_text()


def test_official_sdk_over_https(topology):
    t = topology
    conf = Configuration(host=t.url, api_key="demo-key")
    conf.ssl_ca_cert = t.ca  # the throwaway certificate is its own CA
    with ApiClient(conf) as client:
        resp = SmsApi(client).send_sms_messages(SmsRequest(messages=[message(to="41793026727", text="sdk via tls")]))
    mid = resp.messages[0].message_id
    assert resp.messages[0].status.group_name == "PENDING"
    wait_for(lambda: any(m["messageId"] == mid for m in t.sandbox.messages()), timeout=30, what="the SDK's message")


def test_kill_9_of_one_bridge_mid_burst_loses_and_doubles_nothing(topology):
    """400 sends through nginx, sync and queued with notifyUrl; a bridge (PostgreSQL: bridge A, a process of
    its own; SQLite: worker 0) is ``kill -9``'d after 100 acceptances and restarted. Requests in flight on it
    get 502 (not accepted); nginx then passes it over for fail_timeout."""
    t = topology
    t.sandbox.reset()
    victim = t.victim()
    accepted: dict[str, str] = {}  # text -> messageId
    bad_gateway: list[str] = []  # texts answered 502: not accepted, the outcome unknown to the caller
    killed = threading.Event()
    kill_at: list[float] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        text = f"k{i}"
        try:
            r = t.get("/sms/1/text/query", params={**(DEMO if i % 2 else QUEUED), "from": "InfoSMS",
                                                   "to": f"4179{i:07d}", "text": text,
                                                   "notifyUrl": t.receiver.url("/dlr-kill")})
        except requests.RequestException:  # an answer nginx had begun passing on, cut off: not accepted either
            with lock:
                bad_gateway.append(text)
            return
        if r.status_code != 200:
            assert r.status_code == 502, r.text  # in flight on (or sent to) the killed bridge: not accepted
            with lock:
                bad_gateway.append(text)
            return
        with lock:
            accepted[text] = r.json()["messages"][0]["messageId"]
            if len(accepted) == 100:
                os.kill(victim, signal.SIGKILL)
                wait_for(lambda: not alive(victim), timeout=10, what="the bridge dead")
                kill_at.append(time.monotonic())
                killed.set()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(400)))
    assert killed.is_set()
    t.restart()
    assert len(accepted) >= 380, f"{len(accepted)} accepted, {len(bad_gateway)} got 502{t.errors()}"

    def at_sandbox() -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for m in t.sandbox.messages():
            seen.setdefault(m["text"], []).append(m["messageId"])
        return seen

    # every accepted message reaches the sandbox exactly once, under the caller's id (leased ones after the
    # dead bridge's lease); a 502'd one is absent or present once
    wait_for(lambda: set(accepted) <= set(at_sandbox()), timeout=60, interval=0.3, what="every accepted message at the sandbox")
    seen = at_sandbox()
    assert {x: seen[x] for x in accepted if seen[x] != [accepted[x]]} == {}
    assert [x for x in bad_gateway if len(seen.get(x, [])) > 1] == []
    expected = set(accepted.values()) | {seen[x][0] for x in bad_gateway if x in seen}
    wait_for(lambda: expected <= set(_reports(t.receiver)), timeout=60, interval=0.3, what="every report relayed")
    arrivals: dict[str, list[float]] = {}
    for r in t.receiver.snapshot():
        if r.path == "/dlr-kill":
            for result in json.loads(r.body)["results"]:
                arrivals.setdefault(result["messageId"], []).append(r.at)
    assert set(arrivals) == expected
    # twice only when the first POST reached the receiver before the kill (its answer died with the bridge)
    assert {m: at for m, at in arrivals.items() if len(at) > 1 and (len(at) > 2 or min(at) >= kill_at[0] + KILL_WINDOW)} == {}
    wait_for(lambda: _answers(t), timeout=30, what="nginx answering")
    if t.kind == "sqlite-workers":
        wait_for(lambda: t.bridges[0].worker_pids()[0] != victim, timeout=30, what="worker 0 restarted")
    else:
        assert requests.get(f"http://127.0.0.1:{t.bridges[-1].port}/readyz", timeout=10).status_code == 200
