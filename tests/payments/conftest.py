import pytest

from payments.services import wallet_fund
from payments.token import Token, token_configured
from tests.payments.factories import (
    ONE_AIN,
    account_new,
    payment_signed,
    requirements_for,
)


@pytest.fixture
def token() -> Token:
    return token_configured()


@pytest.fixture
def payer(db):
    """A wallet holding 1 AIN."""
    account = account_new()
    wallet_fund(address=account.address, amount=ONE_AIN)
    return account


@pytest.fixture
def payee() -> str:
    return account_new().address


@pytest.fixture
def requirements(payee):
    return requirements_for(payee)


@pytest.fixture
def payment(payer, requirements):
    return payment_signed(payer, requirements)


@pytest.fixture
def lesson(db):
    """A gated lesson at 0.005 AIN."""
    from tests.lessons.factories import LessonFactory

    return LessonFactory(priced=True, body="## Secret\n\nThe paid part.\n")


@pytest.fixture
def site_wallet(settings) -> str:
    return settings.X402_SITE_PAY_TO
