"""The leak gate finds a secret value in an image archive however base64
lines it up, and run logs mask it the same way."""

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from deployments.leaks import archive_leaks
from deployments.pipeline import MASK, secrets_mask

VALUE = "Zq3-secret_value-for-the-gate"


def _layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as layer:
        for name, content in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            layer.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()


def archive_write(folder: Path, content: bytes) -> Path:
    """A docker-archive with one layer holding one file."""
    archive = folder / "image.tar"
    layer = _layer({"www/file": content})
    with tarfile.open(archive, "w") as outer:
        for name, data in {"config.json": b"{}", "layer/layer.tar": layer}.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            outer.addfile(entry, io.BytesIO(data))
    return archive


def _wrapped(text: bytes) -> bytes:
    encoded = base64.b64encode(text)
    return b"\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


ENCODINGS = {
    "after one byte": base64.b64encode(b"a" + VALUE.encode()),
    "after a user name": base64.b64encode(b"bot:" + VALUE.encode()),
    "before a letter": base64.b64encode(VALUE.encode() + b"Q"),
    "URL-safe": base64.urlsafe_b64encode(b"~~" + VALUE.encode() + b"\xff\xfe"),
    "wrapped at 76": _wrapped(b"0" * 40 + VALUE.encode() + b"\n"),
}


@pytest.mark.parametrize("how", list(ENCODINGS))
def test_the_leak_gate_finds_base64_of_a_value_wherever_it_starts(tmp_path, how):
    archive = archive_write(tmp_path, b"prefix " + ENCODINGS[how] + b" suffix")

    search = archive_leaks(archive, [VALUE])

    assert search.found == ["layer layer/layer.tar: /www/file"]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('pa"ss\\word-1234', json.dumps({"token": 'pa"ss\\word-1234'})),
        ("a<b>c&d-12345", '{"Env":["TOKEN=a\\u003cb\\u003ec\\u0026d-12345"]}'),
        ("gr\u00fc\u00dfe-12345", json.dumps({"token": "gr\u00fc\u00dfe-12345"})),
    ],
)
def test_the_leak_gate_finds_a_value_written_inside_json(tmp_path, value, written):
    archive = archive_write(tmp_path, written.encode())

    search = archive_leaks(archive, [value])

    assert search.found == ["layer layer/layer.tar: /www/file"]


@pytest.mark.parametrize("value", ['pa"ss\\word-1234', "gr\u00fc\u00dfe-12345"])
def test_a_log_line_masks_a_value_written_inside_json(value):
    line = "answered " + json.dumps({"token": value})

    assert secrets_mask(line, {"api_key": value}) == f'answered {{"token": "{MASK}"}}'


def test_the_leak_gate_passes_an_image_without_the_value(tmp_path):
    archive = archive_write(tmp_path, base64.b64encode(b"bot:another-value-entirely"))

    assert archive_leaks(archive, [VALUE]).found == []


@pytest.mark.parametrize("how", ["after one byte", "after a user name", "URL-safe"])
def test_a_log_line_masks_base64_of_a_value_wherever_it_starts(how):
    line = f"auth={ENCODINGS[how].decode()}"

    masked = secrets_mask(line, {"token": VALUE})

    assert MASK in masked
    assert all(form not in masked for form in (ENCODINGS[how].decode()[4:-4], VALUE))
