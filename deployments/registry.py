"""The private registry (the CNCF distribution registry, Debian's
``docker-registry``): its configuration and credentials, starting and
stopping it, and the parts of its HTTP API the pipeline uses.

The registry listens on 127.0.0.1 over plain HTTP with bcrypt htpasswd
authentication; the Docker engine accepts plain HTTP to 127.0.0.0/8.
"""

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests
import yaml
from django.conf import settings

from deployments.keys import registry_password

logger = logging.getLogger(__name__)

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY_CONFIG = "application/vnd.oci.image.config.v1+json"
PROVENANCE_TYPE = "application/vnd.lessongraph.provenance.v1+json"
START_TIMEOUT_SECONDS = 15


class RegistryError(Exception):
    """The registry is down, refused the credentials or answered nonsense."""


def registry_home() -> Path:
    return settings.DEPLOYMENTS_DIR / "registry"


def registry_url() -> str:
    return f"http://{settings.DEPLOYMENTS_REGISTRY}"


def registry_auth() -> tuple[str, str]:
    return settings.DEPLOYMENTS_REGISTRY_USERNAME, registry_password()


def registry_configure() -> Path:
    """Write the registry's configuration and bcrypt htpasswd under
    ``DEPLOYMENTS_DIR/registry``; return the configuration's path."""
    host, _, port = settings.DEPLOYMENTS_REGISTRY.rpartition(":")
    if host not in {"127.0.0.1", "localhost"}:
        raise RegistryError(
            f"The project serves its registry on 127.0.0.1 only, not {host!r}; "
            "point DEPLOYMENTS_REGISTRY at 127.0.0.1:PORT or run your own."
        )
    home = registry_home()
    (home / "data").mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    htpasswd = home / "htpasswd"
    username, password = registry_auth()
    tool = shutil.which("htpasswd")
    if tool is None:
        raise RegistryError("htpasswd is missing: apt-get install apache2-utils")
    # -i reads the password from standard input, never the command line.
    subprocess.run(
        [tool, "-B", "-i", "-c", str(htpasswd), username],
        input=password.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )
    configuration = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(home / "data")},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
        },
        "auth": {"htpasswd": {"realm": "lessongraph", "path": str(htpasswd)}},
    }
    path = home / "config.yml"
    path.write_text(yaml.safe_dump(configuration))
    return path


def registry_answers() -> bool:
    try:
        response = requests.get(
            f"{registry_url()}/v2/", auth=registry_auth(), timeout=2
        )
    except requests.RequestException:
        return False
    return response.status_code == 200


def registry_start() -> int:
    """Start the registry in the background unless one answers already;
    return its process id (0 when it was already running elsewhere)."""
    if registry_answers():
        return _pid_read() or 0
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryError(
            "docker-registry is missing: apt-get install docker-registry"
        )
    configuration = registry_configure()
    home = registry_home()
    with open(home / "registry.log", "ab") as log:
        process = subprocess.Popen(
            [binary, "serve", str(configuration)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (home / "registry.pid").write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if registry_answers():
            logger.info("Registry started on %s, pid %s", registry_url(), process.pid)
            return process.pid
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RegistryError(
        f"The registry did not answer on {registry_url()}; see {home / 'registry.log'}."
    )


def registry_stop() -> bool:
    """Stop the registry this project started; False when none ran."""
    pid = _pid_read()
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    (registry_home() / "registry.pid").unlink(missing_ok=True)
    return True


def _pid_read() -> int | None:
    path = registry_home() / "registry.pid"
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    # Only a docker-registry serving our configuration is ours to stop.
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if str(registry_home()).encode() in command else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _request(method: str, url: str, **options: object) -> requests.Response:
    try:
        return requests.request(
            method,
            url,
            auth=registry_auth(),
            timeout=settings.DEPLOYMENTS_REGISTRY_TIMEOUT_SECONDS,
            **options,  # type: ignore[arg-type]
        )
    except requests.Timeout:
        raise RegistryError(
            f"The registry at {registry_url()} does not answer: no answer within "
            f"{settings.DEPLOYMENTS_REGISTRY_TIMEOUT_SECONDS} s."
        ) from None
    except requests.ConnectionError:
        raise RegistryError(
            f"The registry at {registry_url()} does not answer: nothing listens "
            "there. Start it (`manage.py registry start`) and run again."
        ) from None
    except requests.RequestException as error:
        raise RegistryError(
            f"The registry at {registry_url()} does not answer: {error}"
        ) from None


def _checked(response: requests.Response, doing: str) -> requests.Response:
    if response.status_code == 401:
        raise RegistryError(f"The registry refused our credentials while {doing}.")
    if response.status_code >= 400:
        raise RegistryError(
            f"The registry answered {response.status_code} while {doing}: "
            f"{response.text[:200]}"
        )
    return response


def manifest_digest(repository: str, reference: str) -> str | None:
    """The digest a tag (or digest) names in our registry; None if absent."""
    response = _request(
        "HEAD",
        f"{registry_url()}/v2/{repository}/manifests/{reference}",
        headers={"Accept": MANIFEST_TYPES},
    )
    if response.status_code == 404:
        return None
    _checked(response, f"resolving {repository}:{reference}")
    digest = response.headers.get("Docker-Content-Digest", "")
    if not digest.startswith("sha256:"):
        raise RegistryError(f"The registry gave no digest for {repository}.")
    return digest


def _blob_put(repository: str, content: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    started = _checked(
        _request("POST", f"{registry_url()}/v2/{repository}/blobs/uploads/"),
        "starting an upload",
    )
    location = started.headers["Location"]
    if location.startswith("/"):
        location = registry_url() + location
    separator = "&" if "?" in location else "?"
    _checked(
        _request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=content,
            headers={"Content-Type": "application/octet-stream"},
        ),
        "uploading a blob",
    )
    return digest


def signature_tag(digest: str) -> str:
    """Where an image's signature is kept, beside it in its repository."""
    return digest.replace(":", "-") + ".sig"


def signature_store(repository: str, digest: str, document: bytes) -> str:
    """Store a signed provenance document as a small OCI artifact tagged
    after the image digest; return the artifact's digest."""
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_EMPTY_CONFIG,
            "digest": _blob_put(repository, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": PROVENANCE_TYPE,
                "digest": _blob_put(repository, document),
                "size": len(document),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    response = _checked(
        _request(
            "PUT",
            f"{registry_url()}/v2/{repository}/manifests/{signature_tag(digest)}",
            data=body,
            headers={"Content-Type": OCI_MANIFEST},
        ),
        "storing a signature",
    )
    return str(response.headers.get("Docker-Content-Digest", ""))


def signature_fetch(repository: str, digest: str) -> bytes | None:
    """The signed provenance document stored beside an image; None when the
    image has none."""
    response = _request(
        "GET",
        f"{registry_url()}/v2/{repository}/manifests/{signature_tag(digest)}",
        headers={"Accept": OCI_MANIFEST},
    )
    if response.status_code == 404:
        return None
    manifest = _checked(response, "reading a signature").json()
    try:
        layer = manifest["layers"][0]
        layer_digest = layer["digest"]
    except (KeyError, IndexError, TypeError):
        raise RegistryError("The signature beside the image is malformed.") from None
    blob = _checked(
        _request("GET", f"{registry_url()}/v2/{repository}/blobs/{layer_digest}"),
        "reading a signature",
    ).content
    if "sha256:" + hashlib.sha256(blob).hexdigest() != layer_digest:
        raise RegistryError("The signature blob does not match its digest.")
    return blob
