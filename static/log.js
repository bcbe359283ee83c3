// smsbridge message log: polls GET /ui/api/log (the same view, filter and page) and updates the cells of
// the rows on the page, so status changes (delivery reports, retries) show without a reload.
(function () {
  "use strict";
  const dataEl = document.getElementById("log-data");
  if (!dataEl) return;
  const CFG = JSON.parse(dataEl.textContent);
  const live = document.getElementById("log-live");
  const notice = document.getElementById("log-new");
  let failures = 0;

  function apply(json) {
    const present = new Set();
    let fresh = 0;
    json.rows.forEach((row) => {
      const tr = document.querySelector('#log-table tr[data-key="' + row.key + '"]');
      if (!tr) { fresh += 1; return; }
      present.add(row.key);
      Object.entries(row.cells).forEach(([name, value]) => {
        const td = tr.querySelector('[data-cell="' + name + '"]');
        if (td && td.textContent !== value) {
          td.textContent = value;
          td.classList.add("changed");
        }
      });
      if (row.group) {
        tr.className = "g-" + row.group.toLowerCase();
        const badge = tr.querySelector(".badge");
        if (badge) badge.className = "badge g-" + row.group.toLowerCase();
      }
    });
    notice.hidden = fresh === 0;
    if (fresh) {
      notice.textContent = "";
      const a = document.createElement("a");
      a.href = window.location.href;
      a.id = "log-reload";
      a.textContent = fresh + " new " + (fresh === 1 ? "entry" : "entries") + ": show";
      notice.appendChild(a);
    }
  }

  async function poll() {
    if (document.visibilityState === "visible") {
      try {
        const resp = await fetch(CFG.api, {credentials: "same-origin", headers: {"Accept": "application/json"}});
        if (resp.status === 401) {  // logged out: back to the login, then to this page and filter
          window.smsbridgeLoggedOut();
          return;
        }
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        apply(await resp.json());
        failures = 0;
        live.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      } catch (err) {
        failures += 1;
        live.textContent = "Live updates failing (" + err.message + "); retrying.";
      }
    }
    setTimeout(poll, Math.min(CFG.interval * (1 + failures), 30000));
  }
  setTimeout(poll, CFG.interval);
})();
