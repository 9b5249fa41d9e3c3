"""Logging filters."""

import logging
from http import HTTPStatus


class PaymentRequiredFilter(logging.Filter):
    """Leave out Django's warning for each 402 answer.

    A 402 is the first step of every sale, not a client's mistake; the
    refusals of payments actually sent are logged by payments/gate.py with
    their reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != HTTPStatus.PAYMENT_REQUIRED
