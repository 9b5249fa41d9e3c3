"""The official x402 client, set up to pay from one key in one token.

Everything in the project that pays (account wallets, ``x402_fetch``, the
tests and the benchmarks) builds its client here, so that all of them pay
exactly as a program using the package would.
"""

from eth_account.signers.local import LocalAccount
from x402 import x402ClientSync
from x402.client_base import SpendControlAsset


def paying_client(
    account: LocalAccount, *, network: str, asset: str, cap: int | None = None
) -> x402ClientSync:
    """A client that signs with ``account`` for ``asset`` on ``network``,
    at most ``cap`` (smallest units) a payment when given."""
    # Imported here: x402.mechanisms.evm imports web3, about a second.
    from x402.mechanisms.evm.exact import ExactEvmClientScheme
    from x402.mechanisms.evm.signers import EthAccountSigner

    client = x402ClientSync()
    client.register(network, ExactEvmClientScheme(EthAccountSigner(account)))
    # The client pays only in assets it knows (USDC and the like) unless an
    # asset is listed here, and its default cap of one dollar a payment
    # applies to those known assets only: a listed asset without its own
    # max_amount_per_payment is paid without any limit.
    allowed = SpendControlAsset(network=network, asset=asset)
    if cap is not None:
        allowed["max_amount_per_payment"] = str(cap)
    client.set_spend_controls({"allowed_assets": [allowed]})
    return client
