"""Settings refuse to start on development defaults in production, and on
values they cannot read."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

STRONG_KEY = "k" * 50


def start_django(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DEBUG", "DJANGO_ENV"}
    }
    env.update(environment, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "the development key is refused"),
        ({"SECRET_KEY": "short"}, "at least 32 characters"),
        ({"SECRET_KEY": STRONG_KEY, "DEBUG": "true"}, "refuses to start with DEBUG on"),
        ({"SECRET_KEY": STRONG_KEY, "DEBUG": "maybe"}, "DEBUG must be a boolean"),
    ],
)
def test_production_refuses_unsafe_settings(environment, message):
    result = start_django(DJANGO_ENV="production", **environment)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_its_own_key_and_debug_off():
    result = start_django(DJANGO_ENV="production", SECRET_KEY=STRONG_KEY)

    assert result.returncode == 0, result.stderr


def test_unknown_environment_name_is_refused():
    result = start_django(DJANGO_ENV="staging")

    assert "DJANGO_ENV must be 'development' or 'production'" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X402_MAX_TIMEOUT_SECONDS", "abc", "must be a whole number, got 'abc'"),
        ("ARXIV_BATCH_SIZE", "2.5", "must be a whole number, got '2.5'"),
        ("ARXIV_TIMEOUT_SECONDS", "soon", "must be a number, got 'soon'"),
    ],
)
def test_a_number_setting_that_is_not_one_is_refused_by_name(name, value, message):
    result = start_django(**{name: value})

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} {message}" in result.stderr
    assert "ValueError" not in result.stderr


def test_a_number_setting_left_empty_takes_its_default():
    result = start_django(X402_MAX_TIMEOUT_SECONDS="")

    assert result.returncode == 0, result.stderr
