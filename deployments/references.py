"""Image references: ``registry/repository[:tag][@sha256:digest]``."""

import re
from dataclasses import dataclass

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
HOST = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$")
# What Docker assumes when a reference names no registry.
DEFAULT_REGISTRY = "docker.io"


class ReferenceInvalid(ValueError):
    pass


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def by_digest(self, digest: str) -> "ImageReference":
        return ImageReference(self.registry, self.repository, "", digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def reference_parse(text: str) -> ImageReference:
    """Read an image reference, refusing anything Docker would read
    differently from how it looks."""
    if not text or len(text) > 512 or text != text.strip():
        raise ReferenceInvalid("An image reference is 1 to 512 characters, no spaces.")
    rest, _, digest = text.partition("@")
    if digest and "/" not in rest and "/" in digest:
        raise ReferenceInvalid(
            f"{rest!r} before @ reads as a user name, which an image reference "
            "cannot carry: give registry/repository[:tag][@sha256:digest]."
        )
    if digest and not DIGEST.fullmatch(digest):
        raise ReferenceInvalid(f"{digest!r} is not a sha256 digest.")
    first, slash, path = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry = first
        if not HOST.fullmatch(registry):
            raise ReferenceInvalid(f"{registry!r} is not a registry host.")
    else:
        registry, path = DEFAULT_REGISTRY, rest
    tag = ""
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
        if not TAG.fullmatch(tag):
            raise ReferenceInvalid(f"{tag!r} is not a valid tag.")
    components = path.split("/")
    if not path or not all(COMPONENT.fullmatch(part) for part in components):
        raise ReferenceInvalid(
            f"{path!r} is not a repository name (lower-case letters, digits and "
            "separators)."
        )
    return ImageReference(registry, path, tag, digest)
