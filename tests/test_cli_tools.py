"""CLI: ``send`` (HTTP to a running bridge), ``preview``, ``url`` (the builder) and ``outbox``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from app import main
from gateway import urlbuilder as ub
from gateway.clock import SystemClock
from gateway.delivery.outbox import Outbox
from gateway.delivery.urlpolicy import UrlPolicy
from gateway.store.engine import Database
from tests.conftest import DEMO, ROOT, default_raw_config
from tests.helpers import wait_for
from tests.receiver import Receiver


@pytest.fixture
def config_file(tmp_path):
    raw = default_raw_config()
    raw["store"] = {"path": str(tmp_path / "cli.db")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_send_template_and_raw_through_a_running_bridge(bridge, sandbox, config_file, capsys):
    creds = ["--url", bridge.url, "--username", "demo", "--password", DEMO["password"]]
    code, out, err = run(capsys, "--config", str(config_file), "send", "alarm", "phone=41793026727",
                         "msg=Pump 3 failed", *creds)
    assert code == 0 and "HTTP 200" in err
    assert json.loads(out)["messages"][0]["status"]["groupName"] == "PENDING"
    assert sandbox.messages()[-1]["text"] == "[ALARM] HQ: Pump 3 failed"
    code, out, _ = run(capsys, "--config", str(config_file), "send", "query", "to=41793026727", "text=Hi", "--xml",
                       *creds)
    assert code == 0 and out.startswith("<?xml") and "<SMSResponse>" in out
    code, out, err = run(capsys, "--config", str(config_file), "send", "alarm", "phone=%phoneNumber%", "msg=x",
                         *creds)
    assert code == 1 and "HTTP 400" in err and "phone" in json.loads(out)["requestError"]["serviceException"][
        "validationErrors"]
    code, out, err = run(capsys, "--config", str(config_file), "send", "query", "to=41793026727", "text=x",
                         "--url", bridge.url, "--username", "demo", "--password", "wrong")
    assert code == 1 and "HTTP 401" in err


def test_preview(capsys):
    code, out, _ = run(capsys, "preview", "x" * 161)
    assert code == 0 and "GSM7" in out and "parts:                2" in out
    code, out, _ = run(capsys, "preview", "Ωμέγα", "--transliteration", "GREEK", "--json")
    got = json.loads(out)
    assert (got["encoding"], got["parts"], got["textPreview"]) == ("GSM7", 1, "ΩMEΓA")


def test_url_command_builds_what_the_page_builds(config_file, capsys):
    code, out, _ = run(capsys, "--config", str(config_file), "url", "alarm", "--name", "phone=phoneNumber",
                       "--name", "msg=message", "--username", "demo", "--format", "xml", "--curl")
    url, curl = out.splitlines()
    assert code == 0
    assert url == ("http://127.0.0.1:8080/t/alarm.xml?username=demo&password=YOUR_PASSWORD"
                   "&phone=%phoneNumber%&msg=%message%")
    assert curl == ("curl -sS -G http://127.0.0.1:8080/t/alarm.xml --data-urlencode 'username=demo' "
                    "--data-urlencode 'password=YOUR_PASSWORD' --data-urlencode 'phone=%phoneNumber%' "
                    "--data-urlencode 'msg=%message%'")
    for style in ub.STYLES.values():
        code, out, _ = run(capsys, "--config", str(config_file), "url", "alarm", "--style", style.name)
        assert out.strip() == (f"http://127.0.0.1:8080/t/alarm?username=demo&password=YOUR_PASSWORD"
                               f"&phone={style.token('phone')}&msg={style.token('msg')}")  # the first caller's name
    code, out, _ = run(capsys, "--config", str(config_file), "url", "query", "--preset", "nagios", "--value",
                       "from=InfoSMS", "--base", "http://bridge.lan:8080")
    assert out.strip() == ("http://bridge.lan:8080/sms/1/text/query?username=demo&password=YOUR_PASSWORD"
                           "&to=$CONTACTPAGER$&text=$SERVICEOUTPUT$&from=InfoSMS")
    code, out, _ = run(capsys, "--config", str(config_file), "url", "query", "--style", "custom", "--prefix", "@@",
                       "--suffix", "@@")
    assert out.strip().endswith("&password=YOUR_PASSWORD&to=@@to@@&text=@@text@@")
    code, out, _ = run(capsys, "--config", str(config_file), "url", "x", "--parse",
                       "https://a.api.infobip.com/sms/1/text/query?username=u&password=p&to=%SMSNUMBER")
    parsed = json.loads(out)
    assert parsed["spec"]["base"] == "http://127.0.0.1:8080" and parsed["spec"]["fields"][0]["value"] == "SMSNUMBER"
    code, _, err = run(capsys, "--config", str(config_file), "url", "alarm", "--name", "nope=x")
    assert code == 2 and "'nope' is not a parameter of 'alarm'" in err


def test_outbox_list_and_redrive(config_file, tmp_path, capsys):
    receiver = Receiver(status=404).start()
    db = Database(str(tmp_path / "cli.db"))
    outbox = Outbox(db, SystemClock(), retry_on_4xx=False, policy_for=lambda _: UrlPolicy(allow_loopback=True))
    try:
        job = outbox.enqueue("dlr", receiver.url("/hook?token=secret-token"), body="{}", caller="demo")
        outbox.run_due()
        assert outbox.job(job).state == "dead"
        code, out, _ = run(capsys, "--config", str(config_file), "outbox", "list")
        assert code == 0 and f"{job:>6}  dead" in out and "HTTP 404" in out
        assert "secret-token" not in out  # URLs are shown redacted
        code, out, _ = run(capsys, "--config", str(config_file), "outbox", "list", "--json", "--state", "all")
        assert [j["id"] for j in json.loads(out)] == [job]
        code, out, err = run(capsys, "--config", str(config_file), "outbox", "redrive", str(job), "999")
        assert code == 1 and f"job {job}: re-driven" in out and "job 999: not a dead letter" in err
        assert outbox.job(job).state == "pending" and outbox.job(job).attempts == 0
        receiver.status = 200
        outbox.run_due()
        wait_for(lambda: outbox.job(job).state == "done", what="re-driven job delivered")
        code, out, _ = run(capsys, "--config", str(config_file), "outbox", "list")
        assert "no dead outbox jobs" in out
    finally:
        outbox.close()
        db.close()
        receiver.close()


def test_new_commands_are_in_the_real_entry_point():
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=30, cwd=ROOT)
    for cmd in ("send", "preview", "url", "outbox"):
        assert cmd in out.stdout
