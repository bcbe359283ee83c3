"""deploy/nginx/smsbridge.conf, run by Debian's nginx with a throwaway certificate in front of a
``--workers 2`` bridge on one SQLite file, driven over HTTPS (issue 15 item 5).

nginx reaches the bridge from 127.0.0.2 (``proxy_bind``, added for the test only), the only trusted
proxy; the test's direct requests come from 127.0.0.1, an untrusted peer.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from infobip_api_client import ApiClient, Configuration, SmsApi
from infobip_api_client.models import SmsRequest

from tests.conftest import DEMO, ROOT, Sandbox, running_sandbox
from tests.helpers import free_port, wait_for
from tests.official_client import message
from tests.receiver import Receiver
from tests.workers import QUEUED, WorkersBridge, alive, report_counts, workers_config

PROXY = "127.0.0.2"  # nginx's source address towards the bridge


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


def render(site: str, d: Path, port: int, bridge_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/smsbridge.conf with the test's ports, certificate and proxy source address."""
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*$", site, re.M)
    assert len(servers) == 2, "deploy/nginx/smsbridge.conf changed shape: adjust the test"
    site = site.replace(servers[0], servers[0].replace(re.search(r"127\.0\.0\.1:\d+", servers[0]).group(0),
                                                       f"127.0.0.1:{bridge_port}"))
    site = site.replace(servers[1] + "\n", "")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;\n    proxy_bind {PROXY};")
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
    sandbox: Sandbox
    receiver: Receiver
    bridge: WorkersBridge
    nginx: subprocess.Popen
    url: str  # https://127.0.0.1:<nginx>
    ca: str
    dir: Path

    def errors(self) -> str:
        return f"\n--- nginx error.log ---\n{(self.dir / 'error.log').read_text()[-3000:]}" \
               f"\n--- bridge ---\n{self.bridge.text()[-3000:]}"

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, verify=self.ca, timeout=30, **kw)


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    binary = nginx_binary()
    d = tmp_path_factory.mktemp("nginx")
    cert, key = certificate(d)
    receiver = Receiver().start()
    with running_sandbox(dlr_delay=0.05, time_scale=0.001) as sandbox:
        bdir = tmp_path_factory.mktemp("bridge")
        bridge = WorkersBridge(workers_config(bdir, sandbox.url, trusted_proxies=[PROXY]), workers=2)
        port = free_port()
        (d / "nginx.conf").write_text(render((ROOT / "deploy/nginx/smsbridge.conf").read_text(), d, port,
                                             bridge.port, cert, key))
        proc = subprocess.Popen([binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        topo = Topology(sandbox, receiver, bridge, proc, f"https://127.0.0.1:{port}", str(cert), d)
        try:
            wait_for(lambda: proc.poll() is not None or _answers(topo), timeout=30, what="nginx")
            assert proc.poll() is None, f"nginx exited: {proc.stderr.read()}{topo.errors()}"
            yield topo
        finally:
            proc.send_signal(signal.SIGQUIT)  # graceful stop
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            bridge.stop()
            receiver.close()


def _answers(topo: Topology) -> bool:
    try:
        return topo.get("/readyz").status_code == 200
    except requests.RequestException:
        return False


def _access_line(topo: Topology, request_id: str) -> str:
    def find() -> str | None:
        return next((ln for ln in topo.bridge.text().splitlines() if "smsbridge.access" in ln
                     and f"[{request_id}]" in ln), None)
    return wait_for(find, timeout=10, what=f"the access line of {request_id}")


def test_sends_over_https_log_the_real_client_address(topology):
    t = topology
    r = t.get("/sms/1/text/query", params={**DEMO, "from": "InfoSMS", "to": "41793026727", "text": "via nginx"},
              headers={"X-Request-Id": "via-nginx", "X-Forwarded-For": "203.0.113.7"})  # a client's own claim
    assert r.status_code == 200 and r.json()["messages"][0]["status"]["groupName"] == "PENDING", r.text + t.errors()
    line = _access_line(t, "via-nginx")
    # nginx appends its peer (127.0.0.1) to the client's header; the bridge believes only that last hop
    assert " 127.0.0.1 GET /sms/1/text/query" in line and "203.0.113.7" not in line and PROXY not in line, line
    direct = requests.get(t.bridge.url + "/readyz", timeout=10,
                          headers={"X-Request-Id": "direct", "X-Forwarded-For": "198.51.100.9"})
    assert direct.status_code == 200
    line = _access_line(t, "direct")
    assert " 127.0.0.1 GET /readyz" in line and "198.51.100.9" not in line, line  # untrusted peer: ignored


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


def test_admin_login_under_the_prefix_holds_across_the_worker_processes(topology):
    t = topology
    s = requests.Session()
    page = s.get(t.url + "/smsbridge/ui/login", params={"next": "/ui/log"}, timeout=30, verify=t.ca)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = s.post(t.url + "/smsbridge/ui/login", data={"csrf_token": token, "next": "/ui/log", "username": "admin",
                                                    "password": "admin"}, allow_redirects=False, timeout=30, verify=t.ca)
    assert r.status_code in (302, 303) and r.headers["Location"].endswith("/smsbridge/ui/log"), r.text + t.errors()
    assert "Path=/smsbridge/ui" in r.headers["Set-Cookie"], r.headers["Set-Cookie"]
    for _ in range(12):  # connections land on either process: both honour the session (one key, one store)
        got = s.get(t.url + "/smsbridge/ui/log", allow_redirects=False, timeout=30, verify=t.ca, headers={"Connection": "close"})
        assert got.status_code == 200, (got.status_code, got.headers.get("Location"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', got.text).group(1)
    out = s.post(t.url + "/smsbridge/ui/logout", data={"csrf_token": token}, allow_redirects=False, timeout=30, verify=t.ca)
    assert out.status_code in (302, 303)
    for _ in range(6):  # revoked everywhere
        assert s.get(t.url + "/smsbridge/ui/log", allow_redirects=False, timeout=30, verify=t.ca).status_code in (302, 303)


def test_a_report_is_relayed_once(topology):
    t = topology
    r = t.get("/sms/1/text/query", params={**QUEUED, "from": "InfoSMS", "to": "41793026834", "text": "report me",
                                           "notifyUrl": t.receiver.url("/dlr-one")})
    assert r.status_code == 200, r.text + t.errors()
    mid = r.json()["messages"][0]["messageId"]
    wait_for(lambda: report_counts(t.receiver)[mid] == 1, timeout=30, what="the report")
    assert [x.path for x in t.receiver.snapshot() if mid.encode() in x.body] == ["/dlr-one"]


def test_official_sdk_over_https(topology):
    t = topology
    conf = Configuration(host=t.url, api_key="demo-key")
    conf.ssl_ca_cert = t.ca  # the throwaway certificate is its own CA
    with ApiClient(conf) as client:
        resp = SmsApi(client).send_sms_messages(SmsRequest(messages=[message(to="41793026727", text="sdk via tls")]))
    mid = resp.messages[0].message_id
    assert resp.messages[0].status.group_name == "PENDING"
    wait_for(lambda: any(m["messageId"] == mid for m in t.sandbox.messages()), timeout=30, what="the SDK's message")


def test_kill_9_of_one_child_mid_burst_loses_nothing_accepted(topology):
    t = topology
    t.sandbox.reset()
    victim = t.bridge.worker_pids()[0]
    accepted: list[str] = []
    refused = Counter()
    done = threading.Event()
    lock = threading.Lock()

    def send(i: int) -> None:
        who = DEMO if i % 2 else QUEUED
        try:
            r = t.get("/sms/1/text/query", params={**who, "from": "InfoSMS", "to": f"4179{i:07d}", "text": f"k{i}"})
        except requests.RequestException as exc:  # not accepted: the caller would retry
            refused[type(exc).__name__] += 1
            return
        if r.status_code == 200:
            with lock:
                accepted.append(r.json()["messages"][0]["messageId"])
                if len(accepted) == 100:
                    os.kill(victim, signal.SIGKILL)
                    done.set()
        else:
            assert r.status_code == 502, r.text  # in flight on the killed child: not accepted
            refused[r.status_code] += 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(400)))
    assert done.is_set() and not alive(victim)
    assert len(accepted) >= 390, f"{len(accepted)} accepted, refused {dict(refused)}{t.errors()}"
    # every accepted message reaches the sandbox exactly once (leased ones after the dead child's lease)
    wait_for(lambda: set(accepted) <= {m["messageId"] for m in t.sandbox.messages()}, timeout=120,
             what="every accepted message at the sandbox")
    at_sandbox = Counter(m["messageId"] for m in t.sandbox.messages())
    assert set(at_sandbox.values()) == {1} and set(accepted) <= set(at_sandbox)
    wait_for(lambda: t.bridge.worker_pids()[0] != victim, timeout=30, what="worker 0 restarted")
    assert _answers(t)
