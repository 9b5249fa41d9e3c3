import pytest

from payments.eip3009 import UINT256_MAX


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("1", 10**18),
        ("1.5", 15 * 10**17),
        ("0.005", 5_000_000_000_000_000),
        ("0.000000000000000001", 1),
        ("0", 0),
    ],
)
def test_whole_tokens_become_smallest_units(token, text, units):
    assert token.units_from_text(text) == units


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        "1e3",
        "1.",
        ".5",
        " 1",
        "1_000",
        "0x10",
        "١",
        "0.0000000000000000001",
    ],
)
def test_amounts_that_are_not_plain_decimals_are_refused(token, text):
    with pytest.raises(ValueError):
        token.units_from_text(text)


def test_amounts_beyond_uint256_are_refused(token):
    with pytest.raises(ValueError, match="uint256"):
        token.units_from_text(str(UINT256_MAX))


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (5_000_000_000_000_000, "0.005 AIN"),
        (10**18, "1 AIN"),
        (0, "0 AIN"),
        (-(10**18), "-1 AIN"),
    ],
)
def test_smallest_units_are_shown_as_whole_tokens(token, units, text):
    assert token.text_from_units(units) == text
