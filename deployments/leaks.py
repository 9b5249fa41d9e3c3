"""The leak gate: search a built image for secret values.

The image comes as a docker-archive (what ``docker save`` and ``buildah
push docker-archive:`` write): its manifest, its configuration (which holds
the history, the environment and the labels) and every layer. Each file of
each layer is read whole and searched, as are file and link names.
"""

import base64
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# Files bigger than this in a layer are read in pieces with an overlap, so
# that a secret straddling two pieces is still found.
CHUNK_BYTES = 4 * 1024 * 1024


# A base64 form shorter than this would match by chance in a large image.
BASE64_MINIMUM = 8


def base64_forms(raw: bytes) -> list[bytes]:
    """The text a value always leaves in base64, wherever it starts in what
    was encoded: base64 turns each 3 bytes into 4 characters, so a value
    after 1 or 2 other bytes (``user:`` before a password) encodes to other
    characters than on its own, and the characters it shares with the bytes
    around it (a newline after it, say) differ again. For each of the three
    alignments, the characters that only the value decides; in both the
    standard and the URL-safe alphabet."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = 4 if shift else 0
        end = (shift + len(raw)) // 3 * 4
        core = encoded[start:end]
        if len(core) >= BASE64_MINIMUM:
            forms.append(core)
            forms.append(core.replace(b"+", b"-").replace(b"/", b"_"))
    return list(dict.fromkeys(forms))


# How Go's JSON encoder (the engine's and buildah's, which write the image
# configuration and history) writes these characters inside a string.
GO_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def json_forms(value: str) -> list[bytes]:
    """The value as it reads inside a JSON string, where it differs from
    the value itself: a quote, a backslash or a control character escaped,
    characters beyond ASCII as \\u escapes, and <, > and & as Go escapes
    them."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    go = escaped
    for character, escape in GO_JSON_ESCAPES.items():
        go = go.replace(character, escape)
    forms = [escaped, json.dumps(value)[1:-1], go]
    return [form.encode() for form in dict.fromkeys(forms) if form != value]


def text_holds(text: str, value: str) -> bool:
    """Whether ``text`` (JSON, say) holds the value, plain or escaped as
    inside a JSON string."""
    return value in text or any(form.decode() in text for form in json_forms(value))


def _needles(values: Iterable[str]) -> list[bytes]:
    needles = []
    for value in values:
        raw = value.encode()
        if len(raw) < 4:
            continue
        needles.append(raw)
        needles.append(base64.b64encode(raw).rstrip(b"="))
        needles.extend(base64_forms(raw))
        needles.extend(json_forms(value))
    return needles


def _search(stream: IO[bytes], needles: list[bytes]) -> bool:
    # Twice the longest needle: a wrapped form has line breaks inside.
    overlap = 2 * max(len(needle) for needle in needles)
    tail = b""
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            return False
        window = tail + chunk
        # base64 tools wrap their lines (at 76 characters, say), which can
        # split a value's form in two.
        unwrapped = window.replace(b"\r", b"").replace(b"\n", b"")
        if any(needle in window or needle in unwrapped for needle in needles):
            return True
        tail = window[-overlap:] if overlap else b""


@dataclass
class LeakSearch:
    """Where secret values were found (empty when clean), and how much was
    searched."""

    found: list[str] = field(default_factory=list)
    layers: int = 0
    files: int = 0


def archive_leaks(
    archive: Path,
    secret_values: Iterable[str],
    on_file: Callable[[], None] = lambda: None,
) -> LeakSearch:
    """Where in the archive any secret value (or its base64) appears: the
    configuration (which holds the history), or a layer's file.
    ``on_file`` is called before each file is searched."""
    search = LeakSearch()
    needles = _needles(secret_values)
    if not needles:
        return search
    found = search.found
    with tarfile.open(archive) as outer:
        for member in outer:
            if not member.isfile():
                continue
            on_file()
            content = outer.extractfile(member)
            if content is None:
                continue
            search.files += 1
            if member.name.endswith(".tar"):
                search.layers += 1
                found.extend(
                    f"layer {member.name}: {place}"
                    for place in _layer_leaks(content, needles, search, on_file)
                )
            elif _search(content, needles):
                kind = (
                    "configuration or history"
                    if member.name.endswith(".json")
                    else "file"
                )
                found.append(f"{kind} {member.name}")
    return search


def _layer_leaks(
    layer: IO[bytes],
    needles: list[bytes],
    search: LeakSearch,
    on_file: Callable[[], None],
) -> list[str]:
    found = []
    with tarfile.open(fileobj=layer, mode="r|*") as tar:
        for member in tar:
            on_file()
            names = (member.name + "\0" + member.linkname).encode()
            if any(needle in names for needle in needles):
                found.append(f"/{member.name} (its name)")
            if not member.isfile():
                continue
            search.files += 1
            content = tar.extractfile(member)
            if content is not None and _search(content, needles):
                found.append(f"/{member.name}")
    return found
