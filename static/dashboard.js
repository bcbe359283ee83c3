// smsbridge dashboard: polls GET /ui/api/dashboard (same period and filter) and refreshes the figures and
// the chart image in place. Logged out: back to the login, then here.
(function () {
  "use strict";
  const dataEl = document.getElementById("dash-data");
  if (!dataEl) return;
  const CFG = JSON.parse(dataEl.textContent);
  const live = document.getElementById("dash-live");
  const chart = document.getElementById("dash-chart");

  function secs(v) {
    if (v === null || v === undefined) return "—";
    if (v < 60) return v.toFixed(1) + " s";
    if (v < 3600) return (v / 60).toFixed(1) + " min";
    return (v / 3600).toFixed(1) + " h";
  }
  function set(key, text) {
    document.querySelectorAll('[data-key="' + key + '"]').forEach((el) => { el.textContent = text; });
  }
  function apply(d) {
    ["sent", "delivered", "failed", "pending", "queueDepth", "outboxDepth", "deadLetters"].forEach((k) => set(k, String(d[k])));
    set("deliveryRate", d.deliveryRate === null ? "—" : d.deliveryRate + " %");
    set("reportDelayP50", secs(d.reportDelayP50));
    set("reportDelayP95", secs(d.reportDelayP95));
    const u = d.upstream;
    set("upstreamText", u.lastAt === null ? "no attempt yet" : (u.ok ? "answering" : "failing"));
    set("upstreamDetail", u.errors5m + " error" + (u.errors5m === 1 ? "" : "s") + " in " + u.attempts5m +
        " attempt" + (u.attempts5m === 1 ? "" : "s") + " (5 min)");
    document.getElementById("dash-upstream").className = "card " + (u.ok ? "ok" : "bad");
    const tbody = document.querySelector("#dash-errors tbody");
    tbody.textContent = "";
    if (!d.topErrors.length) {
      const tr = tbody.insertRow(); tr.className = "empty";
      const td = tr.insertCell(); td.colSpan = 2; td.textContent = "No failures in this period.";
    }
    d.topErrors.forEach((e) => { const tr = tbody.insertRow(); tr.insertCell().textContent = e.reason; tr.insertCell().textContent = String(e.count); });
    chart.src = CFG.chart + (CFG.chart.includes("?") ? "&" : "?") + "t=" + Date.now();
  }
  window.smsbridgePoll(CFG, live, apply);
})();
