"""The rule editor (issue 16): an empty expression box on a new rule, JSON errors with their
line and column, the Preview button styled as the admin's buttons."""

import re

import pytest
from django.core.exceptions import ValidationError

from classification.admin import ExpressionField
from classification.models import Rule
from tests.classification.test_admin import rule_form

pytestmark = pytest.mark.django_db

ADD = "/admin/classification/rule/add/"


def expression_box(content: str) -> str:
    match = re.search(r'<textarea name="expression"[^>]*>(.*?)</textarea>', content, re.S)
    assert match, "no expression box"
    return match.group(1)


def test_a_new_rule_starts_with_an_empty_expression(client, user_with_role, classifications):
    client.force_login(user_with_role("DBAs"))
    content = client.get(ADD).content.decode()
    assert expression_box(content).strip() == ""
    assert "null" not in expression_box(content)


def test_the_preview_button_is_an_admin_button(client, user_with_role, classifications):
    client.force_login(user_with_role("DBAs"))
    content = client.get(ADD).content.decode()
    assert re.search(
        r'<button type="button" class="button"[^>]*id="wf-rule-preview-button"', content
    )


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("{oops", 1, 2),
        ('{\n  "version": 4,\n  "expr": {"fn": "is_superuser"},\n}', 4, 1),
        ('{"version": 4 "expr": {}}', 1, 15),
    ],
)
def test_invalid_json_names_its_line_and_column(
    client, user_with_role, classifications, text, line, column
):
    client.force_login(user_with_role("DBAs"))
    response = client.post(ADD, rule_form(classifications["super"], text))
    errors = response.context["adminform"].form.errors["expression"]
    assert any(f"line {line}, column {column}" in error for error in errors), errors
    assert not Rule.objects.exists()
    # What was typed is shown again to be corrected.
    assert expression_box(response.content.decode()).strip().startswith("{")


def test_the_field_reports_the_position_without_a_request():
    field = ExpressionField()
    with pytest.raises(ValidationError, match="line 1, column 7"):
        field.clean("[1, 2,, 3]")
