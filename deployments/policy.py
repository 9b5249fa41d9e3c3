"""What a container may not be: refused before any container starts.

Each rule has a name that its refusal message starts with, so that a
refusal says which rule it broke.
"""

import os
import posixpath
import re
from collections.abc import Collection
from dataclasses import dataclass

from deployments.engine import (
    ContainerSpec,
    port_binding_parse,
    security_option_parts,
)
from deployments.references import ReferenceInvalid, reference_parse

# The socket and every folder above it: binding any of these hands the
# container the engine, which is root on the host.
SOCKET_PATHS = {
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run",
    "/run",
    "/var",
    "/",
}
HOST = "host"
# Security options that switch a profile off, as ``key`` and ``value``
# once spaces and quotes are gone and either separator (= or :) is read
# (``engine.security_option_parts``).
UNCONFINED = {
    ("seccomp", "unconfined"),
    ("apparmor", "unconfined"),
    ("label", "disable"),
    # The SELinux type of a container that is confined by nothing.
    ("label", "type:spc_t"),
    ("systempaths", "unconfined"),
    ("no-new-privileges", "false"),
}
LOOPBACK = {"127.0.0.1", "::1", "[::1]"}
NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def policy_check(
    spec: ContainerSpec,
    *,
    allowed_registries: list[str],
    require_digest: bool,
    site_ports: Collection[int] = (),
) -> list[Refusal]:
    """Every rule the container breaks; empty when it may start.
    ``site_ports`` are the loopback ports the site's own services listen on
    (its registry's)."""
    refusals = []
    for bind in spec.binds:
        source = posixpath.normpath(bind.split(":", 1)[0]) if bind else ""
        if source.startswith("//"):
            source = source[1:]
        if _socket(source) or _socket(os.path.realpath(source)):
            refusals.append(
                Refusal(
                    "docker-socket",
                    f"binding {source} would hand the container the Docker engine.",
                )
            )
        else:
            refusals.append(
                Refusal(
                    "host-bind-mount",
                    f"binding the host's {source} is not allowed; run-time secrets "
                    "are the only host files a container gets.",
                )
            )
    root = _root(spec.user)
    if root:
        refusals.append(Refusal("root-user", f"user {spec.user!r} {root}"))
    if spec.privileged:
        refusals.append(Refusal("privileged", "privileged mode is refused."))
    for capability in spec.cap_add:
        refusals.append(
            Refusal("capabilities", f"adding capability {capability} is refused.")
        )
    for namespace in ("network", "pid", "ipc", "uts"):
        mode = getattr(spec, f"{namespace}_mode")
        if namespace_shared(mode):
            refusals.append(
                Refusal(
                    "host-namespace",
                    f"sharing the {namespace} namespace ({mode}) is refused.",
                )
            )
    for device in spec.devices:
        refusals.append(Refusal("devices", f"passing device {device} is refused."))
    for option in spec.security_opt:
        if security_option_unconfined(option):
            refusals.append(
                Refusal(
                    "security-profile",
                    f"{option} disables a security profile and is refused.",
                )
            )
    for name in spec.environment:
        # The engine is given NAME=value, so a name holding "=" ends at it.
        if name.partition("=")[0].strip().upper() == "DOCKER_HOST":
            refusals.append(
                Refusal("docker-host", "a DOCKER_HOST variable is refused.")
            )
    for binding in spec.port_bindings:
        refusal = _port_refusal(binding) or _site_port_refusal(binding, site_ports)
        if refusal is not None:
            refusals.append(refusal)
    refusals.extend(_image_refusals(spec.image, allowed_registries, require_digest))
    return refusals


def _socket(path: str) -> bool:
    return path in SOCKET_PATHS or path.endswith("/docker.sock")


def namespace_shared(mode: str) -> bool:
    """Whether a namespace mode shares the host's or another container's."""
    spelled = mode.strip().lower()
    return spelled == HOST or spelled.startswith("container:")


def security_option_unconfined(option: str) -> bool:
    key, value = security_option_parts(option)
    # Podman's unmask exposes the kernel paths the profiles mask.
    return (key, value) in UNCONFINED or key == "unmask"


def _root(user: str) -> str:
    """Why ``UID:GID`` may run the container as root, or "" when it cannot.

    Only numbers settle it: a name is looked up in the image's own
    /etc/passwd, which may map it to 0, and without a GID the engine takes
    the image's group for that user, or group 0 (root) for a UID the image
    does not know."""
    uid, _, gid = user.strip().partition(":")
    numbers = [int(part) if NUMBER.fullmatch(part) else None for part in (uid, gid)]
    if "root" in (uid, gid) or 0 in numbers:
        return (
            "runs the container as root (user or group 0); name a numeric "
            "non-root UID:GID."
        )
    if None in numbers:
        return (
            "leaves the container's user or group to the image, which may make "
            "it root (a UID without a GID runs in group 0); name a numeric "
            "non-root UID:GID."
        )
    return ""


def _port_refusal(binding: str) -> Refusal | None:
    """``HOST_IP:HOST_PORT:CONTAINER_PORT`` binds one interface; without a
    host address Docker publishes on all of them."""
    parts = binding.rsplit(":", 2)
    host = parts[0] if len(parts) == 3 else ""
    if host in LOOPBACK:
        return None
    return Refusal(
        "ports-all-interfaces",
        f"publishing {binding!r} would listen beyond 127.0.0.1.",
    )


def _site_port_refusal(binding: str, site_ports: Collection[int]) -> Refusal | None:
    """A fixed host port the site's registry listens on: while the registry
    is down, the container would take the port and be sent the registry's
    credentials by the next push or pull."""
    try:
        host_port = port_binding_parse(binding).host_port
    except ValueError:
        return None
    if host_port is None or host_port not in site_ports:
        return None
    return Refusal(
        "site-port",
        f"publishing {binding!r} would take port {host_port}, where the site's "
        "registry listens; leave the host port out or pick another.",
    )


def _image_refusals(
    image: str, allowed_registries: list[str], require_digest: bool
) -> list[Refusal]:
    try:
        reference = reference_parse(image)
    except ReferenceInvalid as error:
        return [Refusal("image-reference", str(error))]
    refusals = []
    if reference.registry not in allowed_registries:
        refusals.append(
            Refusal(
                "registry-not-allowed",
                f"{reference.registry} is not an allowed registry "
                f"({', '.join(allowed_registries)}).",
            )
        )
    if require_digest and not reference.digest:
        refusals.append(
            Refusal(
                "tag-not-digest",
                f"{image} names a tag; a deployment names an image by its digest.",
            )
        )
    return refusals
