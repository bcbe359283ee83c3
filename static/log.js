// smsbridge message log: polls GET /ui/api/log (the same view, filter and page) and updates the cells of
// the rows on the page, so status changes (delivery reports, retries) show without a reload.
(function () {
  "use strict";
  const dataEl = document.getElementById("log-data");
  if (!dataEl) return;
  const CFG = JSON.parse(dataEl.textContent);
  const live = document.getElementById("log-live");
  const notice = document.getElementById("log-new");

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

  window.smsbridgePoll(CFG, live, apply);
})();
