from typing import Any

from django import template
from django.conf import settings

from accounts.models import User
from deployments import selectors
from deployments.engine import engine_missing

register = template.Library()


@register.inclusion_tag("deployments/_worked_example.html", takes_context=True)
def worked_example(context: dict[str, Any], slug: str) -> dict[str, Any]:
    """The "Run this example" panel of a lesson that carries one. It runs
    on the local target (or the first, if there is none named so), and is
    not offered where the example's deployment belongs to someone else."""
    example = selectors.example_for_lesson(slug=slug)
    user = context.get("user")
    targets = sorted(settings.DEPLOYMENTS_TARGETS)
    target = targets[0] if targets and "local" not in targets else "local"
    taken = (
        selectors.targets_taken(name=slug, account=user).get(target)
        if example and isinstance(user, User) and user.is_instructor
        else None
    )
    return {
        "example": example,
        "missing": engine_missing() if example else [],
        "user": user,
        "target": target,
        "owner": taken,
        "csrf_token": context.get("csrf_token"),
    }
