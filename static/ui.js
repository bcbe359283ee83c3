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
    if (!resp.ok) {
      const exc = (json.requestError || {}).serviceException || {};
      const details = Object.entries(exc.validationErrors || {}).map(([k, v]) => k + ": " + v.join("; "));
      throw new Error(details.length ? details.join(" · ") : exc.text || ("HTTP " + resp.status));
    }
    return json;
  }
  function showError(err) {
    const el = $("error");
    el.hidden = !err;
    el.textContent = err ? String(err.message || err) : "";
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

  // ---------------------------------------------------------------- URL builder
  function initBuilder() {
    let spec = null, params = [];
    const styleBody = () => ({style: $("style").value, prefix: $("prefix").value, suffix: $("suffix").value});

    function renderRows() {
      const tbody = $("params").querySelector("tbody");
      tbody.textContent = "";
      const byName = Object.fromEntries(spec.fields.map((f) => [f.param, f]));
      const names = params.map((p) => p.name);
      spec.fields.forEach((f) => { if (!names.includes(f.param)) names.push(f.param); });
      names.forEach((name) => {
        const info = params.find((p) => p.name === name) || {name: name, required: false};
        const f = byName[name] || {param: name, mode: "omit", value: "", style: null};
        const tr = el("tr", {"data-param": name});
        const label = el("td", {}, name);
        if (info.required) label.appendChild(el("span", {class: "req", title: "required"}, " *"));
        if (info.default) label.appendChild(el("small", {}, " (default " + info.default + ")"));
        const mode = el("select", {class: "mode", id: "mode-" + name});
        [["placeholder", "placeholder"], ["value", "fixed value"], ["omit", "leave out"]].forEach(([v, t]) => {
          const o = el("option", {value: v}, t); if (v === f.mode) o.selected = true; mode.appendChild(o);
        });
        const input = el("input", {class: "value", id: "value-" + name, value: f.value});
        tr.append(label, el("td"), el("td"));
        tr.children[1].appendChild(mode);
        tr.children[2].appendChild(input);
        tbody.appendChild(tr);
        mode.addEventListener("change", build);
        input.addEventListener("input", debounce(build, 150));
      });
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
    async function build() {
      try {
        const s = collect();
        const body = {spec: {base: s.base, target: s.target, fmt: s.fmt, username: s.username, fields: s.fields}};
        const out = await api("build", body);
        $("url").value = out.url;
        $("curl").value = out.curl;
        showError(null);
      } catch (err) { showError(err); }
    }
    function apply(out) {
      spec = out.spec; params = out.params;
      remember();
      $("target").value = spec.target;
      $("fmt").value = spec.fmt || "";
      $("username").value = spec.username || "";
      const first = spec.fields.find((f) => f.mode === "placeholder" && f.style);
      if (first) {
        $("style").value = first.style;
        if (first.style === "custom") { $("prefix").value = first.prefix; $("suffix").value = first.suffix; }
      }
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
      } catch (err) { showError(err); }
    }
    async function parse() {
      const notes = $("notes");
      notes.textContent = "";
      try {
        const body = {url: $("paste").value, base: $("base").value};
        if ($("style").value === "custom") Object.assign(body, {prefix: $("prefix").value, suffix: $("suffix").value});
        const out = await api("parse", body);
        $("preset").value = "";
        apply(out);
        (out.notes || []).forEach((n) => notes.appendChild(el("li", {}, n)));
        await build();
      } catch (err) { showError(err); }
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
    let params = [];
    function values() {
      const out = {};
      $("try-params").querySelectorAll("input[data-param]").forEach((i) => { if (i.value !== "") out[i.dataset.param] = i.value; });
      return out;
    }
    const preview = debounce(async () => {
      try {
        const p = await api("preview", {target: $("try-target").value, values: values()});
        $("pv-encoding").textContent = p.encoding + (p.languageCode ? " (" + p.languageCode + ")" : "");
        $("pv-parts").textContent = String(p.parts);
        $("pv-remaining").textContent = String(p.charactersRemaining);
        $("pv-text").textContent = p.textPreview;
        showError(null);
      } catch (err) { showError(err); }
    }, 120);
    async function load() {
      const out = await api("default", {target: $("try-target").value, style: "percent"});
      params = out.params;
      const tbody = $("try-params").querySelector("tbody");
      tbody.textContent = "";
      params.forEach((p) => {
        const tr = el("tr");
        const label = el("td", {}, p.name);
        if (p.required) label.appendChild(el("span", {class: "req"}, " *"));
        const input = el("input", {"data-param": p.name, id: "try-" + p.name, placeholder: p.default || (p.help || "")});
        input.addEventListener("input", preview);
        tr.append(label, el("td"));
        tr.children[1].appendChild(input);
        tbody.appendChild(tr);
      });
      preview();
    }
    function basic(user, password) {
      const bytes = new TextEncoder().encode(user + ":" + password);
      let bin = ""; bytes.forEach((b) => { bin += String.fromCharCode(b); });
      return "Basic " + btoa(bin);
    }
    async function send() {
      try {
        const fields = Object.entries(values()).map(([k, v]) => ({param: k, mode: "value", value: v, style: null}));
        const built = await api("build", {spec: {base: window.location.origin, target: $("try-target").value,
                                                  fmt: $("try-fmt").value, username: null, fields: fields}});
        $("try-url").textContent = built.url;
        $("try-status").textContent = "…";
        const resp = await fetch(built.url, {headers: {Authorization: basic($("try-user").value, $("try-password").value)},
                                             credentials: "omit"});
        $("try-status").textContent = resp.status + " " + resp.statusText;
        $("try-response").textContent = await resp.text();
        showError(null);
      } catch (err) { showError(err); }
    }
    $("try-target").addEventListener("change", load);
    $("send").addEventListener("click", send);
    load();
  }

  if ($("builder-form")) initBuilder();
  if ($("try-target")) initTry();
})();
