"""Constant and single-variable fields skip Jinja at request time and give exactly what Jinja gives."""

from __future__ import annotations

import pytest

from gateway.render import CompiledFields, compile_fields, make_environment, shortcut

VALUES = {"phone": " 41793026727 ", "msg": "{{ ''.__class__ }} & 100% ü", "site": "HQ"}


@pytest.mark.parametrize("src", ["InfoSMS", "  60\n", "{{ phone }}", "{{msg}}", " {{  site }} ", "[ALARM] {{ site }}: {{ msg }}",
                                 "{{ msg | upper }}", "{% if site %}x{% endif %}", "a {# note #} b"])
def test_each_field_renders_as_jinja_would(src: str):
    env = make_environment()
    compiled, problems = compile_fields(env, "t", {"f": src}, VALUES, "templates.t.fields")
    assert not problems and compiled is not None
    jinja = CompiledFields("t", compiled.templates)  # no shortcuts: every field through Jinja
    assert compiled.render(VALUES) == jinja.render(VALUES)


def test_only_the_two_known_shapes_are_shortcuts():
    assert shortcut(" InfoSMS\n") == ("const", "InfoSMS")
    assert shortcut("{{ phone }}") == ("var", "phone")
    assert shortcut("{{ phone|trim }}") is None and shortcut("+{{ phone }}") is None and shortcut("{% raw %}") is None
