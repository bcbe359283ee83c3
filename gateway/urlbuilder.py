"""The URL builder: a target (the raw query API, Kannel's sendsms or a template) and the legacy app's
placeholders ⇄ a URL.

Like Apprise, the URL *is* the configuration, and both directions exist: ``build(spec)`` gives the URL
to paste into the legacy application, ``parse(url)`` reads a URL (the bridge's or Infobip's own) back
into a ``Spec``; a Kannel ``/cgi-bin/sendsms`` URL (an application written for Kannel) becomes the same
request to the bridge. ``parse(build(spec)) == spec`` for every placeholder style (tests/test_urlbuilder.py).

Placeholder tokens are written into the URL *raw* (``%phoneNumber%``, ``{ALERT.SENDTO}``): the legacy
app finds and replaces them before calling. Fixed values are percent-encoded. A value may also mix text
and tokens (``Host $HOSTNAME$ is $HOSTSTATE$``): the text is encoded, the tokens stay raw.

Credentials: a built URL never carries a real password. It has ``password=YOUR_PASSWORD`` for the admin
to fill in; a parsed URL's password is dropped (and said so in ``notes``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

QUERY_TARGET = "query"
QUERY_PATH = "/sms/1/text/query"


@dataclass(frozen=True)
class Dialect:
    """Another gateway's send URL the bridge answers (an entrance of its own): an application written for it
    keeps its URL and changes only the host and port (docs/migrating-from-*.md)."""

    label: str
    path: str
    user: str  # the credential parameters' names
    password: str
    to: str
    text: str
    optional: tuple[str, ...]
    paths: tuple[str, ...] = ()  # other paths that mean the same (older firmware)
    aliases: tuple[tuple[str, str], ...] = ()  # another name a parameter goes by -> the name the builder writes
    literal: tuple[str, ...] = ()  # parameters whose value holds the gateway's own %-escapes, never placeholders


DIALECTS: dict[str, Dialect] = {
    "jasmin": Dialect("an application written for Jasmin", "/send", "username", "password", "to", "content",
                      ("from", "coding", "priority", "sdt", "validity-period", "dlr", "dlr-url", "dlr-level",
                       "dlr-method", "tags")),
    "smseagle": Dialect("an application written for SMSEagle", "/http_api/send_sms", "login", "pass", "to", "message",
                        ("date", "highpriority", "unicode", "flash", "modem_no", "responsetype", "validity", "test"),
                        ("/index.php/http_api/send_sms",)),
    # Kannel's sendsms: the parameters the bridge honours, then those accepted and ignored (no Infobip meaning;
    # docs/migrating-from-kannel.md); a dlr-url's value holds Kannel's %-escapes, read as a fixed value
    "kannel": Dialect("an application written for Kannel", "/cgi-bin/sendsms", "username", "password", "to", "text",
                      ("from", "charset", "coding", "mclass", "validity", "deferred", "dlr-mask", "dlr-url",
                       "smsc", "account", "binfo", "priority", "meta-data", "alt-dcs", "rpi", "compress", "pid"),
                      aliases=(("user", "username"), ("pass", "password"), ("dlrurl", "dlr-url"),
                               ("dlrmask", "dlr-mask")),
                      literal=("dlr-url",)),
}
PASSWORD_TOKEN = "YOUR_PASSWORD"
FORMATS = ("", "json", "xml")
NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_HEX2 = r"(?![0-9A-Fa-f]{2})"
# Characters a custom prefix/suffix may not use: they would break the query string or be ambiguous.
_FORBIDDEN = set("&=#?/+ \t\r\n\"'\\")


@dataclass(frozen=True)
class Style:
    """A placeholder dialect: ``prefix + name + suffix``."""

    name: str
    prefix: str
    suffix: str = ""
    label: str = ""

    def token(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def pattern(self, embedded: bool) -> str:
        guard = ""
        if self.prefix == "%":  # "%E9" is an escape, not a placeholder
            guard = _HEX2 if embedded else (r"(?![0-9A-Fa-f]{2}$)" if not self.suffix else "")
        name = NAME if self.suffix or not embedded else NAME + r"\b"
        return re.escape(self.prefix) + guard + f"({name})" + re.escape(self.suffix)


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("percent", "%", "%", "%name%"),
        Style("percent_prefix", "%", "", "%NAME (PRTG)"),
        Style("nagios", "$", "$", "$NAME$ (Nagios)"),
        Style("dollar_brace", "${", "}", "${name}"),
        Style("dollar", "$", "", "$name"),
        Style("double_brace", "{{", "}}", "{{name}}"),
        Style("brace", "{", "}", "{name}"),
        Style("bracket", "[", "]", "[name]"),
        Style("angle", "<", ">", "<name>"),
    )
}
# Order in which a value is matched: longer/more specific delimiters first.
_MATCH_ORDER = ("percent", "percent_prefix", "nagios", "dollar_brace", "dollar", "double_brace", "brace", "bracket",
                "angle")

# Known legacy callers (legacy-gateways.md §3.6): the style and the tokens for the recipient and the text.
PRESETS: dict[str, dict[str, str]] = {
    "prtg": {"label": "PRTG", "style": "percent_prefix", "to": "SMSNUMBER", "text": "SMSTEXT"},
    "zabbix": {"label": "Zabbix", "style": "brace", "to": "ALERT.SENDTO", "text": "ALERT.MESSAGE"},
    "nagios": {"label": "Nagios", "style": "nagios", "to": "CONTACTPAGER", "text": "SERVICEOUTPUT"},
    "opmanager": {"label": "ManageEngine OpManager", "style": "dollar", "to": "recipient", "text": "message"},
}


def custom_style(prefix: str, suffix: str = "") -> Style:
    """A style with the admin's own delimiters; ValueError if they would break a URL."""
    if not prefix or len(prefix) > 4 or len(suffix) > 4:
        raise ValueError("a custom placeholder needs a prefix of 1-4 characters and a suffix of 0-4")
    bad = sorted((set(prefix) | set(suffix)) & _FORBIDDEN)
    if bad or any(c.isalnum() or c == "_" for c in prefix + suffix):
        raise ValueError(f"custom prefix/suffix may not contain letters, digits or {' '.join(bad) or '& = # ? /'}")
    return Style("custom", prefix, suffix, f"{prefix}name{suffix}")


def style_of(name: str, prefix: str = "", suffix: str = "") -> Style:
    if name == "custom":
        return custom_style(prefix, suffix)
    try:
        return STYLES[name]
    except KeyError:
        raise ValueError(f"unknown placeholder style {name!r}; known: {', '.join([*STYLES, 'custom'])}") from None


@dataclass
class Field:
    """One query parameter: a placeholder token, a fixed value (may embed tokens), or left out."""

    param: str
    mode: str = "placeholder"  # placeholder | value | omit
    value: str = ""  # the placeholder's name, or the fixed value
    style: Style | None = None  # for placeholders and for tokens embedded in a value

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"param": self.param, "mode": self.mode, "value": self.value, "style": None}
        if self.style:
            d["style"] = self.style.name
            if self.style.name == "custom":
                d["prefix"], d["suffix"] = self.style.prefix, self.style.suffix
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Field:
        style = d.get("style")
        mode = str(d.get("mode") or "placeholder")
        if mode not in ("placeholder", "value", "omit"):
            raise ValueError(f"mode of {d.get('param')!r} must be placeholder, value or omit")
        st = style_of(str(style), str(d.get("prefix") or ""), str(d.get("suffix") or "")) if style else None
        if mode == "placeholder" and st is None:
            raise ValueError(f"placeholder {d.get('param')!r} needs a style")
        return cls(str(d["param"]), mode, str(d.get("value") or ""), st)


@dataclass
class Spec:
    """Everything the builder form holds."""

    base: str  # the bridge's base URL, e.g. http://127.0.0.1:8080
    target: str = QUERY_TARGET  # "query" or a template name
    fmt: str = ""  # "", "json" or "xml"
    username: str | None = None  # the caller; its password is never in a built URL
    fields: list[Field] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fields"] = [f.to_dict() for f in self.fields]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spec:
        fmt = str(d.get("fmt") or "")
        if fmt not in FORMATS:
            raise ValueError("fmt must be json, xml or empty")
        return cls(str(d.get("base") or ""), str(d.get("target") or QUERY_TARGET), fmt,
                   d.get("username") or None, [Field.from_dict(f) for f in d.get("fields") or []])


def _enc(text: str) -> str:
    return quote(text, safe="")


def encode_value(f: Field) -> str:
    """The raw query value for a field: tokens raw, everything else percent-encoded."""
    if f.mode == "placeholder":
        assert f.style is not None
        if not re.fullmatch(NAME, f.value):
            raise ValueError(f"placeholder name for {f.param!r} must be letters, digits, _ or . (got {f.value!r})")
        return f.style.token(f.value)
    if f.style is None:
        return _enc(f.value)
    out, pos = [], 0
    for m in re.finditer(f.style.pattern(embedded=True), f.value):
        out += [_enc(f.value[pos:m.start()]), m.group(0)]
        pos = m.end()
    out.append(_enc(f.value[pos:]))
    return "".join(out)


def path_of(target: str, fmt: str) -> str:
    if target in DIALECTS:  # another gateway's own path: no format extension
        return DIALECTS[target].path
    path = QUERY_PATH if target == QUERY_TARGET else "/t/" + _enc(target)
    return path + (f".{fmt}" if fmt else "")


def build(spec: Spec) -> str:
    """The URL to paste into the legacy application."""
    pairs: list[str] = []
    d = DIALECTS.get(spec.target)
    if spec.username:
        user, password = (d.user, d.password) if d else ("username", "password")
        pairs += [f"{user}={_enc(spec.username)}", f"{password}={PASSWORD_TOKEN}"]
    for f in spec.fields:
        if f.mode != "omit":
            pairs.append(f"{_enc(f.param)}={encode_value(f)}")
    url = spec.base.rstrip("/") + path_of(spec.target, spec.fmt)
    return url + ("?" + "&".join(pairs) if pairs else "")


def curl(url: str) -> str:
    """The same request as a curl command (``-g``: brackets and braces are not curl globs)."""
    return f"curl -sS -g {shlex.quote(url)}"


def _styles(hint: Style | None) -> list[Style]:
    return ([hint] if hint else []) + [STYLES[n] for n in _MATCH_ORDER]


def _decode(raw: str) -> str:
    return unquote(raw.replace("+", " "))


_GENERIC = re.compile(r"([^\w\s&=#?/+\"'\\]{1,4})(" + NAME + r")([^\w\s&=#?/+\"'\\]{0,4})")


def read_value(param: str, raw: str, hint: Style | None = None) -> Field:
    """A raw query value back to a Field (placeholder, value with embedded tokens, or plain value)."""
    for st in _styles(hint):
        m = re.fullmatch(st.pattern(embedded=False), raw)
        if m:
            return Field(param, "placeholder", m.group(1), st)
    decoded = _decode(raw)
    for st in _styles(hint):  # a placeholder the pasting browser percent-encoded: %7BALERT.SENDTO%7D
        m = re.fullmatch(st.pattern(embedded=False), decoded)
        if m and st.prefix != "%":
            return Field(param, "placeholder", m.group(1), st)
    m = _GENERIC.fullmatch(raw)
    if m and not raw.startswith("%"):
        try:
            return Field(param, "placeholder", m.group(2), custom_style(m.group(1), m.group(3)))
        except ValueError:
            pass
    for st in _styles(hint):
        pat = re.compile(st.pattern(embedded=True))
        if pat.search(raw):
            out, pos = [], 0
            for m in pat.finditer(raw):
                out += [_decode(raw[pos:m.start()]), m.group(0)]
                pos = m.end()
            out.append(_decode(raw[pos:]))
            return Field(param, "value", "".join(out), st)
    return Field(param, "value", decoded, None)


@dataclass
class Parsed:
    spec: Spec
    notes: list[str]


def parse(url: str, bridge_base: str | None = None, hint: Style | None = None) -> Parsed:
    """Read a URL (the bridge's, or Infobip's query API) into a Spec; ValueError if it is neither.

    ``bridge_base`` replaces the URL's host (an Infobip URL becomes the same request to the bridge);
    ``hint`` is a custom style to recognise first.
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("paste a full http(s):// URL")
    path, fmt = parts.path, ""
    for ext in ("json", "xml"):
        if path.endswith("." + ext):
            path, fmt = path[: -len(ext) - 1], ext
    notes: list[str] = []
    dialect = next(((n, p) for n, d in DIALECTS.items() for p in (d.path, *d.paths) if path.endswith(p)), None)
    if dialect is not None:  # an application written for another gateway: same path and parameters
        target, prefix, fmt = dialect[0], path[: -len(dialect[1])], ""
        notes.append(f"This is {DIALECTS[target].label}: keep its URL and parameters, change only the host and "
                     "port (and the credentials: a caller of the bridge).")
    elif path.endswith(QUERY_PATH):
        target, prefix = QUERY_TARGET, path[: -len(QUERY_PATH)]
    else:
        m = re.fullmatch(r"(.*)/t/([^/]+)", path)
        if not m:
            raise ValueError(f"{parts.path or '/'} is neither Infobip's query API ({QUERY_PATH}), another gateway's "
                             f"send URL ({', '.join(d.path for d in DIALECTS.values())}) nor a bridge template "
                             "(/t/<name>)")
        prefix, target = m.group(1), unquote(m.group(2))
    base = f"{parts.scheme}://{parts.netloc}{prefix}"
    if bridge_base and base.rstrip("/") != bridge_base.rstrip("/"):
        if target in DIALECTS:
            notes.append(f"The host {parts.netloc} was replaced by the bridge's address; its users become callers "
                         f"(callers.<name>, with the {target} scope): see docs/migrating-from-{target}.md.")
        elif "infobip" in parts.netloc.lower():
            notes.append("This was Infobip's own URL: it now points at the bridge, which keeps the API key.")
        else:
            notes.append(f"The host {parts.netloc} was replaced by the bridge's address.")
        base = bridge_base
    spec = Spec(base.rstrip("/"), target, fmt)
    query = parts.query.replace("\u00acify", "&notify").replace("%C2%ACify", "&notify")
    pairs = [(_decode(n), raw) for n, _, raw in (p.partition("=") for p in query.split("&") if p)]
    if hint is None:  # the style of the first whole-value placeholder is looked for first everywhere
        found = (read_value(n, raw) for n, raw in pairs
                 if n not in ("username", "password", "user", "pass", "login", "access_token", "dlr-url", "dlrurl"))
        hint = next((f.style for f in found if f.mode == "placeholder"), None)
    d = DIALECTS.get(target)
    user, password = (d.user, d.password) if d else ("username", "password")
    for name, raw in pairs:
        if d:
            name = dict(d.aliases).get(name, name)
        if name == user:
            spec.username = _decode(raw)
        elif d and name == "access_token":
            notes.append("The access token was removed: give the caller's API key as access_token.")
        elif d and name in d.literal:  # the gateway's own %-escapes (Kannel's dlr-url), never placeholders
            spec.fields.append(Field(name, "value", _decode(raw), None))
        elif name == password:
            if raw and raw != PASSWORD_TOKEN:
                notes.append("The password was removed: the builder never shows one. Fill it in where the URL "
                             f"says {PASSWORD_TOKEN}.")
        else:
            spec.fields.append(read_value(name, raw, hint))
    return Parsed(spec, notes)


# -- what the form offers for a target ---------------------------------------------------------------------
QUERY_OPTIONAL = ("from", "flash", "validityPeriod", "transliteration", "languageCode", "notifyUrl",
                  "notifyContentType", "callbackData", "intermediateReport", "bulkId", "sendAt", "charset")


@dataclass
class ParamInfo:
    name: str
    required: bool
    role: str = ""  # "to" or "text": what a preset fills in
    default: str | None = None
    type: str = "string"
    help: str = ""


def target_params(target: str, templates: dict[str, Any]) -> list[ParamInfo]:
    """The parameters a target takes; ``templates`` maps names to config.TemplateSpec."""
    if target in DIALECTS:
        d = DIALECTS[target]
        return [ParamInfo(d.to, True, "to", type="phone", help="destination number(s)"),
                ParamInfo(d.text, True, "text", help="the message text"), *(ParamInfo(n, False) for n in d.optional)]
    if target == QUERY_TARGET:
        return [ParamInfo("to", True, "to", type="phone", help="destination number(s), comma separated"),
                ParamInfo("text", True, "text", help="the message text"),
                *(ParamInfo(n, False) for n in QUERY_OPTIONAL)]
    spec = templates.get(target)
    if spec is None:
        raise ValueError(f"no template named {target!r}")
    text_src = spec.fields.get("text", "")
    out = []
    for p in spec.params.values():
        role = "to" if p.type == "phone" else ""
        out.append(ParamInfo(p.name, p.required, role, p.default, p.type))
    if not any(p.role == "to" for p in out):
        for p in out:
            if re.search(r"\b" + re.escape(p.name) + r"\b", spec.fields.get("to", "")):
                p.role = "to"
                break
    for p in out:  # the first required parameter the text uses
        if not p.role and p.required and re.search(r"\b" + re.escape(p.name) + r"\b", text_src):
            p.role = "text"
            break
    return out


def default_spec(base: str, target: str, templates: dict[str, Any], style: Style, username: str | None = None,
                 fmt: str = "", preset: str | None = None) -> Spec:
    """The form's starting point: required parameters as placeholders named after themselves."""
    names: dict[str, str] = {}
    if preset:
        p = PRESETS.get(preset)
        if p is None:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        style = STYLES[p["style"]]
        names = {"to": p["to"], "text": p["text"]}
    fields = []
    for info in target_params(target, templates):
        if info.required or (preset and info.role):
            fields.append(Field(info.name, "placeholder", names.get(info.role, info.name), style))
        else:
            fields.append(Field(info.name, "omit", "", None))
    return Spec(base.rstrip("/"), target, fmt, username, fields)


def substitute(url: str, values: dict[str, str], style: Style) -> str:
    """What the legacy app does: replace each token with its URL-encoded value (tests and try-it)."""
    for name, value in values.items():
        url = url.replace(style.token(name), _enc(value))
    return url
