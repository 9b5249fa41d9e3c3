"""Image references are read as Docker reads them, or refused."""

import pytest

from deployments.references import ReferenceInvalid, reference_parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:5031/examples\n/service@" + DIGEST,
        "127.0.0.1:5031\n/examples/service@" + DIGEST,
        "127.0.0.1:5031/examples/service:run-1\n@" + DIGEST,
        "127.0.0.1:5031/examples/service@" + DIGEST + "\n@x",
    ],
)
def test_a_reference_with_a_line_break_inside_is_refused(text):
    with pytest.raises(ReferenceInvalid):
        reference_parse(text)


def test_a_reference_by_digest_is_read_into_its_parts():
    reference = reference_parse("127.0.0.1:5031/examples/service@" + DIGEST)

    assert (reference.registry, reference.repository, reference.digest) == (
        "127.0.0.1:5031",
        "examples/service",
        DIGEST,
    )
