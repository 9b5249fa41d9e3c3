import pytest

from payments.checks import sale_settings_check, token_settings_check


def test_usable_token_settings_pass_the_system_check():
    assert token_settings_check() == []


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("X402_NETWORK", "base-sepolia", "CAIP-2"),
        ("X402_NETWORK", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "CAIP-2"),
        (
            "X402_ASSET_ADDRESS",
            "0xA1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
            "checksum",
        ),
        ("X402_ASSET_ADDRESS", "AIN", "40 hex digits"),
    ],
)
def test_unusable_token_settings_fail_the_system_check(settings, name, value, problem):
    setattr(settings, name, value)

    errors = token_settings_check()

    assert [error.id for error in errors] == ["payments.E001"]
    assert problem in errors[0].msg


def test_a_negative_clock_skew_fails_the_system_check(settings):
    settings.X402_CLOCK_SKEW_SECONDS = -5

    errors = sale_settings_check()

    assert [error.id for error in errors] == ["payments.E002"]
    assert "X402_CLOCK_SKEW_SECONDS must not be negative" in errors[0].msg


def test_no_clock_skew_passes_the_system_check(settings):
    settings.X402_CLOCK_SKEW_SECONDS = 0

    assert sale_settings_check() == []
