"""The offers lessons are sold through, read from the settings, and the
system checks that refuse to start without usable ones."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from payments.checks import sale_settings_check
from payments.offers import offers_configured, offers_for

BASE_SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
EXTERNAL = {
    "scheme": "exact",
    "network": "eip155:84532",
    "asset": BASE_SEPOLIA_USDC,
    "symbol": "USDC",
    "name": "USDC",
    "version": "2",
    "decimals": 6,
    "pay_to": "0x2222222222222222222222222222222222222222",
    "facilitator_url": "https://facilitator.example",
}


def test_default_offer_is_the_site_token_to_the_site_wallet(token, settings):
    [offer] = offers_configured()

    assert offer.token == token
    assert offer.pay_to == settings.X402_SITE_PAY_TO
    assert offer.facilitator_url is None


def test_external_offer_names_its_own_token_and_facilitator(settings):
    settings.X402_OFFERS = [{"scheme": "exact"}, EXTERNAL]

    _, external = offers_configured()

    assert (external.network, external.token.address, external.token.decimals) == (
        "eip155:84532",
        BASE_SEPOLIA_USDC,
        6,
    )
    assert external.facilitator_url == "https://facilitator.example"


def test_lesson_is_offered_in_its_own_asset_only(settings):
    settings.X402_OFFERS = [{"scheme": "exact"}, EXTERNAL]
    offers = offers_configured()

    in_ain = offers_for(asset="AIN", prices=["0.005"], offers=offers)
    in_usdc = offers_for(asset="USDC", prices=["1.25"], offers=offers)

    assert [(o.offer.token.symbol, o.amount) for o in in_ain] == [("AIN", 5 * 10**15)]
    assert [(o.offer.token.symbol, o.amount) for o in in_usdc] == [("USDC", 1_250_000)]


def test_a_bundle_costs_the_sum_of_its_lessons_each_priced_exactly(settings):
    offers = offers_for(
        asset="AIN", prices=["0.005", "0.002"], offers=offers_configured()
    )

    assert [(o.prices, o.amount) for o in offers] == [
        ((5 * 10**15, 2 * 10**15), 7 * 10**15)
    ]


def test_offer_that_cannot_hold_the_price_exactly_is_left_out(settings):
    settings.X402_OFFERS = [EXTERNAL]

    assert (
        offers_for(asset="USDC", prices=["0.0000001"], offers=offers_configured()) == []
    )


def test_nothing_to_sell_has_no_offer():
    assert offers_for(asset="AIN", prices=[], offers=offers_configured()) == []


def test_an_author_with_a_wallet_is_paid_through_the_sites_offers_only(settings):
    settings.X402_OFFERS = [{"scheme": "exact"}, EXTERNAL]
    author = "0x" + "ab" * 20

    ain, usdc = [
        offers_for(
            asset=asset, prices=["1"], offers=offers_configured(), author_pay_to=author
        )[0]
        for asset in ("AIN", "USDC")
    ]

    assert ain.pay_to == author
    # Another facilitator pays only the payee its operator configured.
    assert usdc.pay_to == EXTERNAL["pay_to"] != author


@pytest.mark.parametrize(
    ("offers", "problem"),
    [
        ([], "non-empty list"),
        ([{"scheme": "upto"}], "scheme must be 'exact'"),
        ([{"scheme": "exact", "colour": "red"}], "unknown keys: colour"),
        ([{"scheme": "exact", "network": "eip155:1"}], "site's token"),
        ([{"scheme": "exact", "pay_to": "0x12"}], "40 hex digits"),
        (
            [{"scheme": "exact", "pay_to": "0x" + "0" * 40}],
            "zero address",
        ),
        ([{**EXTERNAL, "decimals": "6"}], "decimals"),
        ([{**EXTERNAL, "network": "base-sepolia"}], "CAIP-2"),
        ([{**EXTERNAL, "facilitator_url": "ftp://x"}], "http(s)"),
        ([{k: v for k, v in EXTERNAL.items() if k != "name"}], "must name name"),
        (
            [{k: v for k, v in EXTERNAL.items() if k != "pay_to"}],
            "must name its pay_to",
        ),
        (
            [EXTERNAL, {**EXTERNAL, "facilitator_url": "https://other.example"}],
            "share one facilitator",
        ),
    ],
)
def test_unusable_offers_fail_loudly(settings, offers, problem):
    settings.X402_OFFERS = offers

    with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
        offers_configured()
    assert [error.id for error in sale_settings_check()] == ["payments.E002"]


def test_usable_sale_settings_pass_the_system_check():
    assert sale_settings_check() == []


def test_production_refuses_the_development_wallet(settings):
    settings.PRODUCTION = True

    errors = sale_settings_check()

    assert [error.id for error in errors] == ["payments.E003"]
    assert "X402_SITE_PAY_TO" in errors[0].msg


def test_production_takes_its_own_wallet(settings):
    settings.PRODUCTION = True
    settings.X402_SITE_PAY_TO = "0x3333333333333333333333333333333333333333"

    assert sale_settings_check() == []


def test_bad_site_wallet_fails_the_system_check(settings):
    settings.X402_SITE_PAY_TO = "site"

    assert [error.id for error in sale_settings_check()] == ["payments.E002"]


def test_timeouts_must_be_positive(settings):
    settings.X402_MAX_TIMEOUT_SECONDS = 0

    assert [error.id for error in sale_settings_check()] == ["payments.E002"]
