"""Sandboxed Jinja rendering of config templates.

Only config.yaml is template source. Caller-supplied values are passed as variables and are never
compiled, so ``{{ ''.__class__ }}`` in a query value is sent as those characters. The environment is
``SandboxedEnvironment`` with ``StrictUndefined``; every template is compiled once at start-up, its
variables checked against the declared parameters, and tried once with sample values so that an
unsafe construct (``__class__``, ``__globals__``) is reported at start-up, naming the template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment


class RenderError(Exception):
    """A template failed to render; the message names the template and field, never a trace."""


def _text(value: Any) -> Any:
    """Every output of every template: a missing value (None) is the empty string."""
    return "" if value is None else value


def _url_text(value: Any) -> str:
    """In a URL template every output is percent-encoded (no safe characters); booleans as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), safe="")


def make_environment(url: bool = False) -> SandboxedEnvironment:
    """The one sandboxed environment factory: ``StrictUndefined``, no autoescape, a missing value
    rendered as ""; with ``url``, every output is percent-encoded (a value never adds a parameter)."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                                finalize=_url_text if url else _text)


#: Kannel escapes: ``%`` and one letter, never the ``{%`` of a Jinja tag.
_KANNEL_ESCAPE = re.compile(r"(?<!\{)%([%A-Za-z])")


def kannel_to_jinja(src: str, aliases: Mapping[str, str], percent: str = "%",
                    first_s: int | None = None) -> tuple[str, int]:
    """The one Kannel-escape translation: ``%x`` -> ``{{ aliases[x] }}``; ``%%`` -> ``percent``; other
    ``%x`` copied through (as Kannel does). With ``first_s``, each ``%s`` becomes the next word
    variable ``_s<n>`` numbered from it; returns (source, the number after the last ``%s``)."""
    count = first_s or 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        code = m.group(1)
        if code == "%":
            return percent
        if code == "s" and first_s is not None:
            count += 1
            return "{{ _s" + str(count - 1) + " }}"
        name = aliases.get(code)
        return "{{ " + name + " }}" if name else m.group(0)

    return _KANNEL_ESCAPE.sub(sub, src), count


_ONE_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def shortcut(src: str) -> tuple[str, str] | None:
    """``("const", text)`` for a field without ``{``, ``("var", name)`` for exactly ``{{ name }}``, else None:
    the two shapes whose Jinja render is known in advance (a render costs ~10 µs, several per request)."""
    if "{" not in src:
        return "const", src.strip()
    one = _ONE_VARIABLE.fullmatch(src.strip())
    return ("var", one.group(1)) if one else None


@dataclass(frozen=True)
class CompiledFields:
    """The Jinja templates of one named route, compiled; fields with a :func:`shortcut` skip Jinja and give
    what it would (a declared variable is always present: the entrance fills in defaults)."""

    name: str
    templates: Mapping[str, object]  # field -> jinja2.Template
    shortcuts: Mapping[str, tuple[str, str]] | None = None

    def render(self, values: Mapping[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, tmpl in self.templates.items():
            kind, arg = self.shortcuts.get(name, ("", "")) if self.shortcuts else ("", "")
            if kind == "const":
                out[name] = arg
            elif kind == "var" and isinstance(values.get(arg), str):
                out[name] = values[arg].strip()
            else:
                out[name] = self._render(name, tmpl, values)
        return out

    def _render(self, name: str, tmpl: object, values: Mapping[str, str]) -> str:
        try:
            return str(tmpl.render(values)).strip()  # type: ignore[attr-defined]
        except SecurityError as exc:
            raise RenderError(f"template {self.name!r} field {name!r} tried an unsafe operation ({exc})") from None
        except TemplateError as exc:
            raise RenderError(f"template {self.name!r} field {name!r} failed to render: {exc}") from None
        except Exception as exc:  # filters can raise anything (e.g. ZeroDivisionError)
            raise RenderError(
                f"template {self.name!r} field {name!r} failed to render: {type(exc).__name__}"
            ) from None


def compile_fields(
    env: SandboxedEnvironment,
    name: str,
    fields: Mapping[str, str],
    declared: Iterable[str],
    path: str,
) -> tuple[CompiledFields | None, list[tuple[str, str]]]:
    """Compile and check ``fields``; return (compiled, problems-with-key-paths)."""
    problems: list[tuple[str, str]] = []
    declared = set(declared)
    compiled: dict[str, object] = {}
    for field, src in fields.items():
        fpath = f"{path}.{field}"
        try:
            ast = env.parse(src)
        except TemplateError as exc:
            problems.append((fpath, f"does not compile: {exc}"))
            continue
        unknown = sorted(meta.find_undeclared_variables(ast) - declared - set(env.globals))
        if unknown:
            problems.append((fpath, f"uses undeclared parameter(s) {', '.join(unknown)}; declare them under params"))
            continue
        compiled[field] = env.from_string(src)
    if problems:
        return None, problems
    result = CompiledFields(name, compiled, {f: c for f in compiled if (c := shortcut(fields[f])) is not None})
    try:
        result.render({p: "0" for p in declared})
    except RenderError as exc:
        if "unsafe" in str(exc):
            problems.append((path, str(exc)))
            return None, problems
    return result, problems
