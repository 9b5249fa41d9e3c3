"""The deployments commands, on the real engine, registry and buildah."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deployments.models import Run
from tests.deployments.runs import FLAGSHIP


def test_deploy_example_follows_every_step_to_success(worker, instructor):
    output = StringIO()

    call_command("deploy_example", FLAGSHIP, "--as", "grace", "--follow", stdout=output)

    text = output.getvalue()
    for step in ("check", "build", "leak gate", "push", "sign", "deploy", "verify"):
        assert f"== {step}: succeeded" in text
    assert "proved: " in text
    assert Run.objects.get().status == Run.Status.SUCCEEDED


def test_deploy_example_refuses_an_unknown_account(db):
    with pytest.raises(CommandError, match="no account"):
        call_command("deploy_example", FLAGSHIP, "--as", "nobody", stdout=StringIO())


@pytest.mark.parametrize("timeout", ["-5", "0", "nan", "soon"])
def test_deploy_example_refuses_a_timeout_that_is_no_wait_before_queueing(
    instructor, timeout
):
    with pytest.raises(CommandError, match="is not a number of seconds above zero"):
        call_command(
            "deploy_example", FLAGSHIP, "--as", "grace", "--follow",
            "--timeout", timeout, stdout=StringIO(),
        )  # fmt: skip

    assert not Run.objects.exists()


def test_registry_status_says_it_answers(deployments_home):
    output = StringIO()

    call_command("registry", "status", stdout=output)

    assert "The registry answers" in output.getvalue()
