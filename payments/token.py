"""The token the site is paid in (AIN), as the settings describe it.

Amounts travel as integers of the token's smallest unit (18 decimals for AIN:
0.005 AIN is 5000000000000000). People write them in whole tokens; the two
conversions here are exact string arithmetic, never floating point.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.eip3009 import UINT256_MAX, Domain, MalformedField, address_parse

NETWORK_RE = re.compile(r"eip155:(?P<chain_id>[1-9][0-9]{0,18})", re.ASCII)
# Whole tokens as people write them: "1", "1.5", "0.005". No sign, no
# exponent, no separators.
TOKEN_AMOUNT_RE = re.compile(
    r"(?P<whole>0|[1-9][0-9]*)(?:\.(?P<fraction>[0-9]+))?", re.ASCII
)


@dataclass(frozen=True)
class Token:
    symbol: str
    network: str
    chain_id: int
    address: str
    name: str
    version: str
    decimals: int

    @property
    def domain(self) -> Domain:
        return Domain(
            name=self.name,
            version=self.version,
            chain_id=self.chain_id,
            verifying_contract=self.address,
        )

    def units_from_text(self, text: str) -> int:
        """``"1.5"`` AIN to 1500000000000000000; refuse anything else."""
        match = TOKEN_AMOUNT_RE.fullmatch(text)
        if match is None:
            raise ValueError(
                f"{text!r} is not an amount of {self.symbol}: write a plain decimal "
                "number such as 1.5, without sign, exponent or separators."
            )
        fraction = match.group("fraction") or ""
        if len(fraction) > self.decimals:
            raise ValueError(
                f"{text!r} has more than {self.decimals} decimal places; "
                f"{self.symbol} has no smaller unit."
            )
        units = int(match.group("whole")) * 10**self.decimals + int(
            fraction.ljust(self.decimals, "0") or "0"
        )
        if units > UINT256_MAX:
            raise ValueError(f"{text!r} is larger than a uint256 can hold.")
        return units

    def text_from_units(self, units: int) -> str:
        """5000000000000000 to ``"0.005 AIN"``."""
        whole, fraction = divmod(abs(units), 10**self.decimals)
        text = str(whole)
        if fraction:
            text += "." + str(fraction).rjust(self.decimals, "0").rstrip("0")
        sign = "-" if units < 0 else ""
        return f"{sign}{text} {self.symbol}"


def token_configured() -> Token:
    """The token from the settings, checked: a bad setting fails loudly."""
    match = NETWORK_RE.fullmatch(settings.X402_NETWORK)
    if match is None:
        raise ImproperlyConfigured(
            f"X402_NETWORK must be a CAIP-2 EVM network such as eip155:31337, "
            f"got {settings.X402_NETWORK!r}."
        )
    try:
        address = address_parse(settings.X402_ASSET_ADDRESS, field="X402_ASSET_ADDRESS")
    except MalformedField as error:
        raise ImproperlyConfigured(str(error)) from None
    return Token(
        symbol=settings.X402_ASSET,
        network=settings.X402_NETWORK,
        chain_id=int(match.group("chain_id")),
        address=address,
        name=settings.X402_ASSET_NAME,
        version=settings.X402_ASSET_VERSION,
        decimals=settings.X402_ASSET_DECIMALS,
    )
