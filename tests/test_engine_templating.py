"""The sandboxed Jinja2 environment: forgiving about missing data, strict about the rest."""
from __future__ import annotations

import pytest

from alertd.engine.templating import RenderError, check_template, evaluate_condition, render, uses_variable


def test_missing_nested_keys_render_empty():
    assert render("[{{ event.customer.phone }}]", {"event": {}}) == "[]"


def test_when_accepts_one_pair_of_braces_out_of_habit():
    assert evaluate_condition("{{ event.n > 2 }}", {"event": {"n": 3}})
    assert not evaluate_condition("{{ event.n > 2 }}", {"event": {}})
    assert evaluate_condition(None, {})


def test_sandbox_blocks_python_internals():
    with pytest.raises(RenderError, match="SecurityError"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_syntax_errors_name_the_line_inside_a_multi_line_template():
    with pytest.raises(RenderError) as info:
        check_template("line one\n{{ oops }\n")
    assert info.value.reason == "unexpected '}' (line 2 of the template)"


def test_event_data_is_never_compiled_as_a_template():
    assert render("{{ event.text }}", {"event": {"text": "{{ 7 * 7 }}"}}) == "{{ 7 * 7 }}"


def test_uses_variable():
    assert uses_variable("{{ group.count }} alerts", "group")
    assert not uses_variable("{{ event.group }}", "group")
