// smsbridge admin UI: URL builder and try-it. Vanilla JS, no build step; talks to /ui/api/* (CSRF header).
// Logged out (a 401 from /ui/api/*): nothing stale stays on screen; the login returns to this page and filter.
window.smsbridgeLoggedOut = function () {
  const root = document.querySelector('meta[name="ui-root"]').content;  // "/ui/", or under the proxy's prefix
  const prefix = root.slice(0, -"/ui/".length);
  let here = window.location.pathname + window.location.search;
  if (prefix && here.startsWith(prefix)) here = here.slice(prefix.length);
  document.querySelectorAll("main").forEach((m) => { m.hidden = true; });
  window.location.assign(root + "login?ended=1&next=" + encodeURIComponent(here));
};

// Live pages (the log, the dashboard): GET ``cfg.api`` every ``cfg.interval`` ms while the page is visible,
// hand the JSON to ``apply``, say how it went in ``live``; slower while failing; a 401 means logged out.
window.smsbridgePoll = function (cfg, live, apply) {
  let failures = 0;
  async function poll() {
    if (document.visibilityState === "visible") {
      try {
        const resp = await fetch(cfg.api, {credentials: "same-origin", headers: {"Accept": "application/json"}});
        if (resp.status === 401) {
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
    setTimeout(poll, Math.min(cfg.interval * (1 + failures), 30000));
  }
  setTimeout(poll, cfg.interval);
};

(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const dataEl = $("ui-data");
  if (!dataEl) return;
  const DATA = JSON.parse(dataEl.textContent);
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const ROOT = document.querySelector('meta[name="ui-root"]').content;  // "/ui/", or under the proxy's prefix

  async function api(path, body) {
    const resp = await fetch(ROOT + "api/" + path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF},
      body: JSON.stringify(body),
    });
    if (resp.status === 401) {
      window.smsbridgeLoggedOut();
      throw new Error("Logged out: the session ended");
    }
    const json = await resp.json();
    if (!resp.ok) throw envelopeError(json, resp.status);
    return json;
  }
  // An Infobip error envelope as an Error: its text, and .fields = {parameter: "reason; reason"}.
  function envelopeError(json, status) {
    const exc = ((json || {}).requestError || {}).serviceException || {};
    const fields = {};
    Object.entries(exc.validationErrors || {}).forEach(([k, v]) => { fields[k] = [].concat(v).join("; "); });
    const details = Object.entries(fields).map(([k, v]) => k + ": " + v);
    const err = new Error(details.length ? details.join(" · ") : exc.text || ("HTTP " + status));
    err.fields = fields;
    return err;
  }
  function showError(err, id, lead) {
    const box = $(id || "error");
    box.hidden = !err;
    box.textContent = "";
    if (!err) return;
    const fields = Object.entries(err.fields || {});
    if (fields.length) {
      box.appendChild(el("p", {}, (lead || "Not built") + ": " + (fields.length === 1 ? "one thing to fix" : fields.length + " things to fix")));
      const ul = el("ul");
      fields.forEach(([k, v]) => ul.appendChild(el("li", {}, k + ": " + v)));
      box.appendChild(ul);
    } else {
      box.textContent = String(err.message || err);
    }
  }
  // Mark the inputs an error names: aria-invalid, and the reason beside it (aria-describedby).
  function markFields(fields, inputFor) {
    document.querySelectorAll("[aria-invalid=true]").forEach((i) => i.removeAttribute("aria-invalid"));
    document.querySelectorAll(".field-error").forEach((s) => { s.textContent = ""; });
    Object.entries(fields || {}).forEach(([name, reason]) => {
      const input = inputFor(name);
      if (!input) return;
      input.setAttribute("aria-invalid", "true");
      const msg = $(input.getAttribute("aria-describedby") || "");
      if (msg) msg.textContent = reason;
    });
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function debounce(fn, ms) {
    let t = null;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  }
  function listNotes(id, notes) {
    const ul = $(id);
    ul.textContent = "";
    (notes || []).forEach((n) => ul.appendChild(el("li", {}, n)));
  }

  // ---------------------------------------------------------------- URL builder
  function initBuilder() {
    let spec = null, params = [], seq = 0;
    const styleBody = () => ({style: $("style").value, prefix: $("prefix").value, suffix: $("suffix").value});

    let showAll = false;  // the optional parameters left out are folded away until asked for
    function toggleLabel() {
      const n = $("params").querySelectorAll("tr.unused").length;
      const b = $("more-params");
      b.hidden = n === 0;
      b.setAttribute("aria-expanded", String(showAll));
      b.textContent = showAll ? "Hide the optional parameters left out" : "Show " + n + " more optional parameters";
    }
    $("more-params").addEventListener("click", () => {
      showAll = !showAll;
      $("params").querySelectorAll("tr.unused").forEach((tr) => { tr.hidden = !showAll; });
      toggleLabel();
    });
    function renderRows() {
      const tbody = $("params").querySelector("tbody");
      tbody.textContent = "";
      const byName = Object.fromEntries(spec.fields.map((f) => [f.param, f]));
      const names = params.map((p) => p.name);
      spec.fields.forEach((f) => { if (!names.includes(f.param)) names.push(f.param); });
      names.forEach((name, i) => {
        const info = params.find((p) => p.name === name) || {name: name, required: false};
        const f = byName[name] || {param: name, mode: "omit", value: "", style: null};
        const tr = el("tr", {"data-param": name});
        const label = el("th", {scope: "row", id: "pname-" + i});
        label.appendChild(el("span", {}, name));
        if (info.required) label.appendChild(el("span", {class: "req", "aria-label": "required"}, " *"));
        if (info.default) label.appendChild(el("small", {}, " (default " + info.default + ")"));
        const mode = el("select", {class: "mode", id: "mode-" + name, "aria-label": name + ": use"});
        [["placeholder", "placeholder"], ["value", "fixed value"], ["omit", "leave out"]].forEach(([v, t]) => {
          const o = el("option", {value: v}, t); if (v === f.mode) o.selected = true; mode.appendChild(o);
        });
        const input = el("input", {class: "value", id: "value-" + name, value: f.value, spellcheck: "false",
                                   "aria-label": name + ": placeholder name or value", "aria-describedby": "err-p" + i});
        if (f.mode === "omit") input.disabled = true;
        const tdMode = el("td"), tdValue = el("td");
        tdMode.appendChild(mode);
        tdValue.append(input, el("span", {class: "field-error", id: "err-p" + i}));
        tr.append(label, tdMode, tdValue);
        if (!info.required && f.mode === "omit") { tr.classList.add("unused"); tr.hidden = !showAll; }
        tbody.appendChild(tr);
        mode.addEventListener("change", () => { input.disabled = mode.value === "omit"; build(); });
        input.addEventListener("input", debounce(build, 150));
      });
      toggleLabel();
    }
    function collect() {
      const st = styleBody();
      spec.base = $("base").value;
      spec.fmt = $("fmt").value;
      spec.username = $("username").value || null;
      spec.fields = Array.from($("params").querySelectorAll("tbody tr")).map((tr) => {
        const f = {param: tr.dataset.param, mode: tr.querySelector(".mode").value,
                   value: tr.querySelector(".value").value, style: null};
        const old = (spec._styles || {})[f.param];
        const s = f.mode === "omit" ? null : (old && !spec._restyle ? old : st);
        if (s && (f.mode === "placeholder" || f.mode === "value")) Object.assign(f, s);
        return f;
      });
      spec._restyle = false;
      return spec;
    }
    function remember() {  // per-field styles (a parsed URL may mix styles)
      spec._styles = {};
      spec.fields.forEach((f) => {
        if (f.style) spec._styles[f.param] = {style: f.style, prefix: f.prefix || "", suffix: f.suffix || ""};
      });
    }
    function inputFor(name) {
      if (["base", "target", "username"].includes(name)) return $(name);
      const tr = Array.from($("params").querySelectorAll("tbody tr")).find((r) => r.dataset.param === name);
      return tr ? tr.querySelector(".value:not([disabled])") || tr.querySelector(".mode") : null;
    }
    function clearOut() {  // nothing half-right stays on screen to be copied
      ["url", "curl"].forEach((id) => { $(id).value = ""; });
      document.querySelectorAll("button[data-copy]").forEach((b) => { b.disabled = true; });
      listNotes("build-notes", []);
    }
    async function build() {
      const mine = ++seq;
      try {
        const s = collect();
        const body = {spec: {base: s.base, target: s.target, fmt: s.fmt, username: s.username, fields: s.fields}};
        const out = await api("build", body);
        if (mine !== seq) return;
        $("url").value = out.url;
        $("curl").value = out.curl;
        document.querySelectorAll("button[data-copy]").forEach((b) => { b.disabled = false; });
        listNotes("build-notes", out.notes);
        markFields({}, inputFor);
        showError(null);
      } catch (err) {
        if (mine !== seq) return;
        clearOut();
        markFields(err.fields, inputFor);
        showError(err);
      }
    }
    function setCaller(name) {  // a pasted caller unknown here is kept, and named as such
      const sel = $("username");
      sel.querySelectorAll("option[data-unknown]").forEach((o) => o.remove());
      if (name && !Array.from(sel.options).some((o) => o.value === name)) {
        sel.appendChild(el("option", {value: name, "data-unknown": "1"}, name + " (not configured here)"));
      }
      sel.value = name || "";
    }
    function apply(out) {
      spec = out.spec; params = out.params;
      remember();
      $("target").value = spec.target;
      $("fmt").value = spec.fmt || "";
      setCaller(spec.username);
      const first = spec.fields.find((f) => f.mode === "placeholder" && f.style) || spec.fields.find((f) => f.style);
      $("style").value = first ? first.style : "percent";
      if (first && first.style === "custom") { $("prefix").value = first.prefix; $("suffix").value = first.suffix; }
      $("custom").hidden = $("style").value !== "custom";
      renderRows();
    }
    async function reset() {
      try {
        const out = await api("default", {target: $("target").value, preset: $("preset").value || null,
                                          fmt: $("fmt").value, username: $("username").value || null,
                                          base: $("base").value, ...styleBody()});
        apply(out);
        await build();
      } catch (err) { clearOut(); showError(err); }
    }
    async function parse() {
      listNotes("notes", []);
      try {
        const body = {url: $("paste").value, base: $("base").value};
        if ($("style").value === "custom") Object.assign(body, {prefix: $("prefix").value, suffix: $("suffix").value});
        const out = await api("parse", body);
        $("preset").value = "";
        $("paste").removeAttribute("aria-invalid");
        apply(out);
        listNotes("notes", out.notes);
        await build();
      } catch (err) {
        clearOut();
        $("paste").setAttribute("aria-invalid", "true");
        showError(err);
      }
    }
    $("target").addEventListener("change", reset);
    $("preset").addEventListener("change", reset);
    $("style").addEventListener("change", () => {
      $("custom").hidden = $("style").value !== "custom";
      $("preset").value = "";
      spec._restyle = true; spec._styles = {};
      build();
    });
    ["prefix", "suffix"].forEach((id) => $(id).addEventListener("input", debounce(() => {
      spec._restyle = true; spec._styles = {}; build();
    }, 150)));
    ["fmt", "username"].forEach((id) => $(id).addEventListener("change", build));
    $("base").addEventListener("input", debounce(build, 150));
    $("parse").addEventListener("click", parse);
    $("paste").addEventListener("paste", () => setTimeout(parse, 0));  // pasted: read at once
    $("paste").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); parse(); } });
    document.querySelectorAll("button[data-copy]").forEach((b) => b.addEventListener("click", async () => {
      const ta = $(b.dataset.copy);
      try { await navigator.clipboard.writeText(ta.value); } catch (e) { ta.select(); document.execCommand("copy"); }
      b.textContent = "Copied";
      setTimeout(() => { b.textContent = "Copy"; }, 1500);
    }));
    reset();
  }

  // ---------------------------------------------------------------- Try it
  function initTry() {
    let params = [], seq = 0;
    function values() {
      const out = {};
      $("try-params").querySelectorAll("[data-param]").forEach((i) => { if (i.value !== "") out[i.dataset.param] = i.value; });
      return out;
    }
    function inputFor(name) {
      return Array.from($("try-params").querySelectorAll("[data-param]")).find((i) => i.dataset.param === name) || null;
    }
    function clearPreview() {
      ["pv-encoding", "pv-parts", "pv-remaining"].forEach((id) => { $(id).textContent = "–"; });
      $("pv-text").textContent = "";
    }
    const preview = debounce(async () => {
      const mine = ++seq;
      try {
        const p = await api("preview", {target: $("try-target").value, values: values()});
        if (mine !== seq) return;
        $("pv-encoding").textContent = p.encoding + (p.languageCode ? " (" + p.languageCode + ")" : "");
        $("pv-parts").textContent = String(p.parts);
        $("pv-remaining").textContent = String(p.charactersRemaining);
        $("pv-text").textContent = p.textPreview;
        showError(null, "pv-error");
      } catch (err) {
        if (mine !== seq) return;
        clearPreview();  // no stale preview next to an error
        showError(err, "pv-error", "No preview");
      }
    }, 120);
    async function load() {
      const out = await api("default", {target: $("try-target").value, style: "percent"});
      params = out.params;
      const tbody = $("try-params").querySelector("tbody");
      tbody.textContent = "";
      params.forEach((p, i) => {
        const tr = el("tr");
        const th = el("th", {scope: "row"});
        th.appendChild(el("label", {for: "try-" + p.name}, p.name));
        if (p.required) th.appendChild(el("span", {class: "req", "aria-label": "required"}, " *"));
        const multi = p.role === "text";  // the message: several lines, kept as typed
        const input = el(multi ? "textarea" : "input", {"data-param": p.name, id: "try-" + p.name,
                                                        placeholder: p.default || (p.help || ""),
                                                        "aria-describedby": "try-err-" + i});
        if (multi) input.setAttribute("rows", "4");
        input.addEventListener("input", preview);
        const td = el("td");
        td.append(input, el("span", {class: "field-error", id: "try-err-" + i}));
        tr.append(th, td);
        if (!p.required) { tr.classList.add("unused"); tr.hidden = !showAll; }
        tbody.appendChild(tr);
      });
      toggleLabel();
      preview();
    }
    let showAll = false;  // the optional parameters are folded away until asked for
    function toggleLabel() {
      const n = $("try-params").querySelectorAll("tr.unused").length;
      const b = $("try-more");
      b.hidden = n === 0;
      b.setAttribute("aria-expanded", String(showAll));
      b.textContent = showAll ? "Hide the optional parameters" : "Show " + n + " optional parameters";
    }
    $("try-more").addEventListener("click", () => {
      showAll = !showAll;
      $("try-params").querySelectorAll("tr.unused").forEach((tr) => { tr.hidden = !showAll && !tr.querySelector("[data-param]").value; });
      toggleLabel();
    });
    function basic(user, password) {
      const bytes = new TextEncoder().encode(user + ":" + password);
      let bin = ""; bytes.forEach((b) => { bin += String.fromCharCode(b); });
      return "Basic " + btoa(bin);
    }
    function messageIds(text) {
      try {
        return (JSON.parse(text).messages || []).map((m) => m.messageId).filter(Boolean);
      } catch (e) {
        return Array.from(text.matchAll(/<messageId>([^<]+)<\/messageId>/g), (m) => m[1]);
      }
    }
    function errorOf(text, status) {
      try { return envelopeError(JSON.parse(text), status); } catch (e) {
        const m = /<text>([^<]*)<\/text>/.exec(text);
        return new Error(m ? m[1] : "HTTP " + status);
      }
    }
    async function send() {
      const out = $("try-log");
      out.textContent = "";  // nothing of the previous send stays next to this one
      ["try-response", "try-url"].forEach((id) => { $(id).textContent = ""; });
      $("try-status").textContent = "–";
      $("try-status").className = "";
      try {
        const fields = Object.entries(values()).map(([k, v]) => ({param: k, mode: "value", value: v, style: null}));
        const built = await api("build", {spec: {base: window.location.origin, target: $("try-target").value,
                                                  fmt: $("try-fmt").value, username: null, fields: fields}});
        $("try-url").textContent = built.url;
        $("try-status").textContent = "…";
        const resp = await fetch(built.url, {headers: {Authorization: basic($("try-user").value, $("try-password").value)},
                                             credentials: "omit"});
        const text = await resp.text();
        $("try-status").textContent = resp.status + " " + resp.statusText;
        $("try-status").className = resp.ok ? "ok" : "error";
        $("try-response").textContent = text;
        $("try-raw").open = resp.ok;
        if (!resp.ok) throw errorOf(text, resp.status);
        messageIds(text).forEach((id) => {
          const li = el("li");
          li.append("Message " + id + ": ");
          li.appendChild(el("a", {href: ROOT + "log?messageId=" + encodeURIComponent(id), class: "log-link"}, "see it in the log"));
          out.appendChild(li);
        });
        markFields({}, inputFor);
        showError(null, "try-error");
      } catch (err) {
        markFields(err.fields, inputFor);
        showError(err, "try-error", "Not sent");
      }
    }
    $("try-target").addEventListener("change", load);
    $("send").addEventListener("click", send);
    load();
  }

  if ($("builder-form")) initBuilder();
  if ($("try-target")) initTry();
})();
