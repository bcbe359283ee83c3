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

import base64
import binascii
import difflib
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from . import accepts
from .entrances.querystring import QueryParams
from .model import ApiError
from .validate import Errors, Limits, validate_submission
from .wire.legacy import submission_from_query

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
    accepts: frozenset[str]  # every parameter its entrance accepts (gateway/accepts.py)
    first: tuple[str, ...]  # the optional parameters the form shows first (the rest follow, sorted)
    paths: tuple[str, ...] = ()  # other paths that mean the same (older firmware)
    secrets: frozenset[str] = frozenset()  # other credentials (never offered, dropped when pasted)
    aliases: tuple[tuple[str, str], ...] = ()  # another name a parameter goes by -> the name the builder writes
    literal: tuple[str, ...] = ()  # parameters whose value holds the gateway's own %-escapes, never placeholders


DIALECTS: dict[str, Dialect] = {
    "jasmin": Dialect("an application written for Jasmin", "/send", "username", "password", "to", "content",
                      accepts.JASMIN_SEND, ("from", "coding", "priority", "sdt", "validity-period", "dlr", "dlr-url",
                                            "dlr-level", "dlr-method", "tags")),
    "smseagle": Dialect("an application written for SMSEagle", "/http_api/send_sms", "login", "pass", "to", "message",
                        accepts.SMSEAGLE_SEND, ("date", "highpriority", "unicode", "flash", "modem_no", "responsetype",
                                                "validity", "test"),
                        ("/index.php/http_api/send_sms",), frozenset({"access_token"})),
    # Kannel's sendsms: the parameters the bridge honours first, then those accepted and ignored (no Infobip
    # meaning; docs/migrating-from-kannel.md); a dlr-url's value holds Kannel's %-escapes, read as a fixed value
    "kannel": Dialect("an application written for Kannel", "/cgi-bin/sendsms", "username", "password", "to", "text",
                      accepts.KANNEL_SEND, ("from", "charset", "coding", "mclass", "validity", "deferred", "dlr-mask",
                                            "dlr-url"),
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
        if not isinstance(d, dict) or not isinstance(d.get("param"), str) or not d["param"]:
            raise ValueError("each field must be an object with a param name")
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
        if not isinstance(d, dict):
            raise ValueError("the form must be an object")
        fmt = str(d.get("fmt") or "")
        if fmt not in FORMATS:
            raise ValueError("fmt must be json, xml or empty")
        fields, username = d.get("fields") or [], d.get("username") or None
        if not isinstance(fields, list):
            raise ValueError("fields must be a list of objects")
        if username is not None and not isinstance(username, str):
            raise ValueError("username must be a caller's name")
        return cls(str(d.get("base") or ""), str(d.get("target") or QUERY_TARGET), fmt, username,
                   [Field.from_dict(f) for f in fields])


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


def _pairs(spec: Spec) -> list[tuple[str, str]]:
    """(name, value) of the URL's parameters: credentials first, then the fields; tokens raw, nothing encoded."""
    out: list[tuple[str, str]] = []
    d = DIALECTS.get(spec.target)
    if spec.username:
        user, password = (d.user, d.password) if d else ("username", "password")
        out += [(user, spec.username), (password, PASSWORD_TOKEN)]
    for f in spec.fields:
        if f.mode == "placeholder":
            encode_value(f)  # the placeholder name's check
            assert f.style is not None
            out.append((f.param, f.style.token(f.value)))
        elif f.mode == "value":
            out.append((f.param, f.value))
    return out


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


def curl_args(spec: Spec) -> list[str]:
    """The same request as curl's arguments: ``-G`` with each parameter ``--data-urlencode``d, so that it stays
    valid whatever text replaces a placeholder (spaces, ``&``, ``%``, ``+``, emoji): curl encodes it."""
    args = ["curl", "-sS", "-G", spec.base.rstrip("/") + path_of(spec.target, spec.fmt)]
    for name, value in _pairs(spec):
        args += ["--data-urlencode", f"{name}={value}"]
    return args


def curl(spec: Spec) -> str:
    """:func:`curl_args` as one shell line, each parameter single-quoted (``$NAME$`` is not expanded)."""
    args = curl_args(spec)
    quoted = ["'" + a.replace("'", "'\"'\"'") + "'" if i >= 5 and i % 2 == 1 else shlex.quote(a)
              for i, a in enumerate(args)]
    return " ".join(quoted)


def _styles(hint: Style | None) -> list[Style]:
    return ([hint] if hint else []) + [STYLES[n] for n in _MATCH_ORDER]


def _decode(raw: str) -> str:
    return unquote(raw.replace("+", " "))


def _plain(text: str) -> str:
    return text


_GENERIC = re.compile(r"([^\w\s&=#?/+\"'\\]{1,4})(" + NAME + r")([^\w\s&=#?/+\"'\\]{0,4})")


def read_value(param: str, raw: str, hint: Style | None = None, decoded: bool = False) -> Field:
    """A raw query value back to a Field (placeholder, value with embedded tokens, or plain value);
    ``decoded``: the value is already plain text (curl's ``--data-urlencode``), not a query value."""
    dec = _plain if decoded else _decode
    for st in _styles(hint):
        m = re.fullmatch(st.pattern(embedded=False), raw)
        if m:
            return Field(param, "placeholder", m.group(1), st)
    text = dec(raw)
    for st in _styles(hint):  # a placeholder the pasting browser percent-encoded: %7BALERT.SENDTO%7D
        m = re.fullmatch(st.pattern(embedded=False), text)
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
                out += [dec(raw[pos:m.start()]), m.group(0)]
                pos = m.end()
            out.append(dec(raw[pos:]))
            return Field(param, "value", "".join(out), st)
    return Field(param, "value", text, None)


@dataclass
class Parsed:
    spec: Spec
    notes: list[str]


@dataclass
class _Curl:
    """What a pasted curl command line holds: its URL, its data (raw or to encode) and its user."""

    url: str = ""
    pairs: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, value, decoded)
    user: str | None = None
    password: bool = False
    notes: list[str] = field(default_factory=list)


_CURL_DATA = {"-d", "--data", "--data-raw", "--data-ascii", "--data-binary"}
_CURL_ENCODE = {"--data-urlencode", "-F", "--form", "--form-string"}
_CURL_WITH_ARG = {"-X", "--request", "-H", "--header", "-o", "--output", "-m", "--max-time", "--connect-timeout",
                  "-A", "--user-agent", "-e", "--referer", "-w", "--write-out", "--retry", "--retry-delay",
                  "--retry-max-time", "-b", "--cookie", "-c", "--cookie-jar", "--cacert", "--capath", "--cert",
                  "--key", "-x", "--proxy", "--resolve", "--connect-to", "--interface", "-T", "--upload-file",
                  "--limit-rate", "-r", "--range", "--url", "-u", "--user", *_CURL_DATA, *_CURL_ENCODE}
_CURL_SHORT_ARG = {o[1] for o in _CURL_WITH_ARG if len(o) == 2}


def _read_curl(line: str) -> _Curl:
    """A whole ``curl …`` command line (as shared in tickets and docs); ValueError when it is not one."""
    try:
        words = shlex.split(line.replace("\\\n", " "))
    except ValueError as exc:
        raise ValueError(f"the curl command line cannot be read ({exc}): check its quotes") from None
    out, i = _Curl(), 1
    while i < len(words):
        w = words[i]
        i += 1
        opt, val = w, None
        if w.startswith("--") and "=" in w and w.split("=", 1)[0] in _CURL_WITH_ARG:
            opt, val = w.split("=", 1)
        elif len(w) > 2 and w[0] == "-" and w[1] != "-" and w[1] in _CURL_SHORT_ARG:
            opt, val = w[:2], w[2:]  # -uuser:pass, -dto=1
        if opt in _CURL_WITH_ARG:
            if val is None:
                if i >= len(words):
                    raise ValueError(f"curl's {opt} needs a value")
                val, i = words[i], i + 1
            _curl_option(out, opt, val)
        elif w.startswith("-") and len(w) > 1:
            if w in ("-K", "--config"):
                raise ValueError("curl reads its options from a file (-K): paste the command line itself")
            continue  # a flag without a value (-s, -S, -g, -k, -L, -i, -v, --globoff, --compressed, …)
        elif not out.url:
            out.url = w
        else:
            raise ValueError(f"the curl command line has two URLs ({out.url} and {w}): paste one request")
    if not out.url:
        raise ValueError("the curl command line has no URL")
    if "://" not in out.url:
        out.url = "http://" + out.url  # as curl does
    return out


def _curl_option(out: _Curl, opt: str, val: str) -> None:
    if opt == "--url":
        out.url = val
    elif opt in ("-u", "--user"):
        out.user, _, password = val.partition(":")
        out.password = bool(password) and password != PASSWORD_TOKEN
    elif opt in ("-H", "--header"):
        name, _, value = val.partition(":")
        scheme, _, token = value.strip().partition(" ")
        if name.strip().lower() == "authorization" and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ValueError("the Authorization header of the curl command line is not Basic user:password") \
                    from None
            out.user, out.password = user, bool(password) and password != PASSWORD_TOKEN
    elif opt in _CURL_DATA:
        if val.startswith("@") and opt != "--data-raw":
            raise ValueError(f"curl's {opt} {val} reads a file: paste the parameters instead")
        out.pairs += [(_decode(n), raw, False) for n, _, raw in (p.partition("=") for p in val.split("&") if p)]
    elif opt in _CURL_ENCODE:
        name, eq, content = val.partition("=")
        if not eq or (opt != "--form-string" and content.startswith(("@", "<"))) or "@" in name:
            raise ValueError(f"curl's {opt} {val!r} is not name=text: paste the parameters as name=text")
        out.pairs.append((name, content, True))


def parse(url: str, bridge_base: str | None = None, hint: Style | None = None) -> Parsed:
    """Read a URL (the bridge's, Infobip's query API, another gateway's) or a whole ``curl …`` command line into
    a Spec; ValueError if it is none of these.

    ``bridge_base`` replaces the URL's host (an Infobip URL becomes the same request to the bridge);
    ``hint`` is a custom style to recognise first.
    """
    url = url.strip()
    notes: list[str] = []
    cmd = _read_curl(url) if re.match(r"curl(\s|$)", url) else None
    if cmd is not None:
        url = cmd.url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("paste a full http(s):// URL or a curl command line")
    path, fmt = parts.path, ""
    for ext in ("json", "xml"):
        if path.endswith("." + ext):
            path, fmt = path[: -len(ext) - 1], ext
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
    pairs = [(_decode(n), raw, False) for n, _, raw in (p.partition("=") for p in query.split("&") if p)]
    pairs += cmd.pairs if cmd else []
    d = DIALECTS.get(target)
    if d:
        pairs = [(dict(d.aliases).get(n, n), raw, dec) for n, raw, dec in pairs]
    user, password = (d.user, d.password) if d else ("username", "password")
    if hint is None:  # the style of the first whole-value placeholder is looked for first everywhere
        found = (read_value(n, raw, decoded=dec) for n, raw, dec in pairs
                 if n not in (user, password) and not (d and (n in d.secrets or n in d.literal)))
        hint = next((f.style for f in found if f.mode == "placeholder"), None)
    dropped = bool(cmd and cmd.password)
    if cmd and cmd.user is not None:
        spec.username = cmd.user
    for name, raw, dec in pairs:
        if name == user:
            spec.username = raw if dec else _decode(raw)
        elif d and name in d.secrets:
            notes.append(f"The {name.replace('_', ' ')} was removed: give the caller's API key as {name}.")
        elif d and name in d.literal:  # the gateway's own %-escapes (Kannel's dlr-url), never placeholders
            spec.fields.append(Field(name, "value", raw if dec else _decode(raw), None))
        elif name == password:
            dropped = dropped or bool(raw and raw != PASSWORD_TOKEN)
        else:
            spec.fields.append(read_value(name, raw, hint, dec))
    if dropped:
        notes.append(f"The password was removed: the builder never shows one. Fill it in where the URL says "
                     f"{PASSWORD_TOKEN}.")
    if cmd and spec.username is None and cmd.user is None:
        notes.append("The curl command line has no credentials: choose the caller.")
    return Parsed(spec, notes)


# -- what the form offers for a target ---------------------------------------------------------------------
# The optional query parameters the form shows first; every other one the query entrance accepts follows.
QUERY_FIRST = ("from", "flash", "validityPeriod", "transliteration", "languageCode", "notifyUrl",
               "notifyContentType", "callbackData", "intermediateReport", "bulkId", "sendAt")


@dataclass
class ParamInfo:
    name: str
    required: bool
    role: str = ""  # "to" or "text": what a preset fills in
    default: str | None = None
    type: str = "string"
    help: str = ""


def _optional(accepted: frozenset[str], first: tuple[str, ...], taken: set[str]) -> list[ParamInfo]:
    rest = accepted - taken - set(first)
    return [ParamInfo(n, False) for n in (*[f for f in first if f in accepted and f not in taken], *sorted(rest))]


def credentials_of(target: str) -> frozenset[str]:
    """The parameter names that carry a caller's credentials (the form's caller, never a field)."""
    d = DIALECTS.get(target)
    if d:
        return frozenset({d.user, d.password, *(a for a, n in d.aliases if n in (d.user, d.password))}) | d.secrets
    return frozenset({"username", "password"})


def known_params(target: str, templates: Mapping[str, Any]) -> frozenset[str]:
    """Every parameter the target's entrance accepts (gateway/accepts.py): the form's fields and credentials."""
    if target in DIALECTS:
        return DIALECTS[target].accepts
    if target == QUERY_TARGET:
        return accepts.QUERY
    spec = templates.get(target)
    if spec is None:
        raise ValueError(f"no template named {target!r}")
    return accepts.template(spec)


def target_params(target: str, templates: Mapping[str, Any]) -> list[ParamInfo]:
    """The parameters a target takes; ``templates`` maps names to config.TemplateSpec."""
    known, creds = known_params(target, templates), credentials_of(target)
    if target in DIALECTS:
        d = DIALECTS[target]
        return [ParamInfo(d.to, True, "to", type="phone", help="destination number(s)"),
                ParamInfo(d.text, True, "text", help="the message text"),
                *_optional(known, d.first, creds | {d.to, d.text} | {a for a, _ in d.aliases})]
    if target == QUERY_TARGET:
        return [ParamInfo("to", True, "to", type="phone", help="destination number(s), comma separated"),
                ParamInfo("text", True, "text", help="the message text"),
                *_optional(known, QUERY_FIRST, creds | {"to", "text"})]
    spec = templates[target]
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
    return out + _optional(known, (), creds | set(spec.params))


def default_spec(base: str, target: str, templates: Mapping[str, Any], style: Style, username: str | None = None,
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


# -- checks: a URL the bridge would refuse is never handed out ---------------------------------------------
@dataclass
class Check:
    """What is wrong with a form (field → reason; ``base``, ``target`` or a parameter) and what to know."""

    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def base_reason(base: str) -> str | None:
    """Why ``base`` cannot be the bridge's address as the legacy application reaches it, or None."""
    try:
        parts = urlsplit(base.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"{base!r} is not a URL: give the bridge's address, e.g. http://127.0.0.1:8080"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{base!r} is not an http:// or https:// address: give e.g. http://127.0.0.1:8080"
    if parts.query or parts.fragment or any(c.isspace() for c in base.strip()):
        return "must be the bridge's address only (no spaces, no ?query, no #fragment)"
    return None


def _fixed(f: Field) -> bool:
    """A fixed value with no token of the legacy app's in it (what the bridge receives as it is)."""
    return f.mode == "value" and not (f.style and re.search(f.style.pattern(embedded=True), f.value))


_SAMPLE = {"to": "41793026727", "text": "sample"}
_ALTERNATIVES = {("jasmin", "content"): "hex-content"}  # (target, required parameter): what may replace it


def check(spec: Spec, templates: Mapping[str, Any], callers: Mapping[str, Any] | None = None) -> Check:
    """Everything the bridge would refuse in a URL built from ``spec``, named by field, before it is handed out:
    the address, unknown and missing parameters, placeholder names, and fixed values checked as the target's
    entrance checks them (with the caller's limits when ``callers`` knows it)."""
    out = Check()
    reason = base_reason(spec.base)
    if reason:
        out.errors["base"] = reason
    try:
        params = target_params(spec.target, templates)
    except ValueError as exc:
        out.errors["target"] = str(exc)
        return out
    known, creds = known_params(spec.target, templates), credentials_of(spec.target)
    what = "the query API" if spec.target == QUERY_TARGET else (
        DIALECTS[spec.target].label if spec.target in DIALECTS else f"template {spec.target!r}")
    used = {f.param: f for f in spec.fields if f.mode != "omit"}
    for f in used.values():
        if f.param in creds:
            out.errors[f.param] = "carries a credential: choose the caller instead"
        elif f.param not in known:
            near = difflib.get_close_matches(f.param, sorted(known - creds), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            out.errors[f.param] = f"is not a parameter of {what}: the bridge would refuse the URL{hint}"
        elif f.mode == "placeholder" and not re.fullmatch(NAME, f.value):
            out.errors[f.param] = f"a placeholder name is letters, digits, _ or . (got {f.value!r})"
        elif f.mode == "value" and not f.value.strip():
            out.errors[f.param] = "is empty: give a value or a placeholder, or leave it out"
    for p in params:
        instead = _ALTERNATIVES.get((spec.target, p.name))
        if p.required and p.name not in used and not (instead and instead in used):
            out.errors[p.name] = "is required: give it a placeholder or a fixed value" + (
                f" (or give {instead})" if instead else "")
    caller = (callers or {}).get(spec.username or "")
    limits = getattr(caller, "limits", None) or Limits()
    country = getattr(caller, "default_country", "") or None  # national numbers, where the caller allows them
    fixed = {n: f.value for n, f in used.items() if _fixed(f) and n not in out.errors}
    for name, reason in _fixed_reasons(spec.target, templates, fixed, limits, country).items():
        out.errors.setdefault(name, reason)
    if callers is not None and spec.username and spec.username not in callers:
        out.notes.append(f"The caller {spec.username!r} is not configured on this bridge: the URL answers 401 until "
                         f"callers.{spec.username} exists in the configuration (or choose one of: "
                         f"{', '.join(sorted(callers)) or 'none'}).")
    if not spec.username:
        out.notes.append("No caller: the application must send the caller's user name and password in an "
                         "Authorization header (Basic).")
    return out


def _fixed_reasons(target: str, templates: Mapping[str, Any], fixed: dict[str, str], limits: Limits,
                   country: str | None = None) -> dict[str, str]:
    """Fixed values as the target's entrance reads and validates them (field → reasons joined)."""
    errs = Errors()
    if target == QUERY_TARGET:
        q = QueryParams([*fixed.items(), *((n, v) for n, v in _SAMPLE.items() if n not in fixed)])
        sub = submission_from_query(q, errs)
        try:
            validate_submission(sub, limits, flat=True, errs=errs, **({"country": country} if country else {}))
        except ApiError as exc:
            errs.by_field = {k: list(v) for k, v in (exc.validation_errors or {}).items()}
    elif target in DIALECTS:  # their own arguments are read by their entrances; the number as every entrance does
        to = fixed.get(DIALECTS[target].to)
        for part in (to or "").split(","):
            reason = accepts.destination_reason(part, limits, country) if to else None
            if reason:
                errs.add(DIALECTS[target].to, reason)
    else:
        spec = templates[target]
        country = getattr(spec, "default_country", "") or country
        for name, value in fixed.items():
            if name in spec.params:
                accepts.check_template_value(name, spec.params[name], value, spec.limits or limits, errs, country)
    return {n: "; ".join(r) for n, r in errs.by_field.items() if n in fixed}


def substitute(url: str, values: dict[str, str], style: Style) -> str:
    """What the legacy app does: replace each token with its URL-encoded value (tests and try-it)."""
    for name, value in values.items():
        url = url.replace(style.token(name), _enc(value))
    return url
