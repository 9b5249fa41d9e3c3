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


@pytest.mark.parametrize(
    "text", ["user@127.0.0.1:5031/x:1", "user:pass@127.0.0.1:5031/x@" + DIGEST]
)
def test_a_user_name_before_the_registry_is_refused_saying_so(text):
    with pytest.raises(ReferenceInvalid, match="reads as a user name"):
        reference_parse(text)
