"""Python function calls per request on the bridge's request path, counted by cProfile (deterministic,
unlike times on a shared machine): ``python bench/calls.py ROOT sync|queued N [sortkey]``. ROOT is a
checkout (e.g. ``git archive REF | tar -x -C /tmp/ref``); a sandbox must listen on 127.0.0.1:18081
(``python app.py sandbox --port 18081``). Requests go through Flask's test client (no waitress)."""
import cProfile, pstats, sys, tempfile, os, yaml
root, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, root)
from gateway import create_app
from gateway.config import build_config
import logging; logging.disable(logging.CRITICAL)
raw = yaml.safe_load(open(os.path.join(root, "config.yaml")))
d = tempfile.mkdtemp()
raw["store"] = {**raw.get("store", {}), "path": d + "/b.db"}
raw["callers"]["demo"]["mode"] = mode
raw["callers"]["demo"]["upstream_api"] = "query" if mode == "sync" else "advanced"
for t in raw["templates"].values():
    if mode == "queued" and t.get("api") == "query": t["api"] = "advanced"
app = create_app(build_config(raw, env={}), "http://127.0.0.1:18081")
ctx = app.extensions["smsbridge"]; ctx.bind("http://127.0.0.1:1"); ctx.start()
c = app.test_client()
q = "/sms/1/text/query?username=demo&password=demo&from=InfoSMS&to=41793026727,41793026834&text=Hello%20world"
for _ in range(100): c.get(q)
p = cProfile.Profile(); p.enable()
for _ in range(n): c.get(q)
p.disable(); ctx.stop()
st = pstats.Stats(p)
print("main calls per request", st.total_calls / n)
st.sort_stats(sys.argv[4] if len(sys.argv) > 4 else "tottime").print_stats(30)
