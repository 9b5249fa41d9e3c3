from typing import Any

from django import template

from deployments import selectors
from deployments.engine import engine_missing

register = template.Library()


@register.inclusion_tag("deployments/_worked_example.html", takes_context=True)
def worked_example(context: dict[str, Any], slug: str) -> dict[str, Any]:
    """The "Run this example" panel of a lesson that carries one."""
    example = selectors.example_for_lesson(slug=slug)
    return {
        "example": example,
        "missing": engine_missing() if example else [],
        "user": context.get("user"),
        "csrf_token": context.get("csrf_token"),
    }
