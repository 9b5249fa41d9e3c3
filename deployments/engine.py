"""The Docker engine, through docker-py: the one module that talks to it.

A target is a name from ``DEPLOYMENTS_TARGETS`` mapped to a ``DOCKER_HOST``
(empty for the local socket, ``ssh://`` or ``tcp://`` with TLS from
``DOCKER_CERT_PATH``). Every call has a timeout; failures become
``EngineError`` with a message a person can act on.
"""

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import docker
import requests
from django.conf import settings
from docker.constants import DEFAULT_DOCKER_API_VERSION, MINIMUM_DOCKER_API_VERSION
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import Mount
from docker.utils import kwargs_from_env, version_gte

logger = logging.getLogger(__name__)

LOCAL_SOCKET = "/var/run/docker.sock"
Lines = Callable[[str], None]
# Called now and then during a long wait, so the run's heartbeat moves.
Beat = Callable[[], None]


def _no_beat() -> None:
    pass


# How often a silent stream lets the run's heartbeat move, in seconds.
BEAT_SECONDS = 1.0


def _beating[T](events: Iterator[T], *, on_wait: Beat) -> Iterator[T]:
    """A stream's events, calling ``on_wait`` at least every second even
    while the stream says nothing (a build's long RUN step writes no line),
    so that the run is not taken for dead. The stream is read on a thread of
    its own."""
    found: queue.Queue[tuple[str, Any]] = queue.Queue()

    def read() -> None:
        try:
            for event in events:
                found.put(("event", event))
        except Exception as error:
            found.put(("error", error))
        else:
            found.put(("end", None))

    threading.Thread(target=read, daemon=True).start()
    while True:
        on_wait()
        try:
            kind, item = found.get(timeout=BEAT_SECONDS)
        except queue.Empty:
            continue
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield item


class EngineError(Exception):
    """The engine is down, timed out or refused what was asked."""


def engine_missing() -> list[str]:
    """What is missing on this machine for deployments, in words saying how
    to install it; empty when all is there. Looks at files only: web
    processes never talk to the engine."""
    missing = []
    tools = {
        "dockerd": "the Docker engine (apt-get install docker.io, then start dockerd)",
        "buildah": "buildah (apt-get install buildah)",
        "docker-registry": "the registry (apt-get install docker-registry)",
        "htpasswd": "htpasswd (apt-get install apache2-utils)",
    }
    for tool, words in tools.items():
        if shutil.which(tool) is None:
            missing.append(words)
    local = [host for host in settings.DEPLOYMENTS_TARGETS.values() if not host]
    if local and shutil.which("dockerd") and not Path(LOCAL_SOCKET).exists():
        missing.append(
            f"a running Docker engine ({LOCAL_SOCKET} is absent: run `make provision`)"
        )
    return missing


def engine_client(target: str) -> docker.DockerClient:
    try:
        host = settings.DEPLOYMENTS_TARGETS[target]
    except KeyError:
        raise EngineError(f"There is no target {target!r}.") from None
    environment = {"DOCKER_HOST": host or f"unix://{LOCAL_SOCKET}"}
    if host.startswith("tcp://"):
        environment |= _tls_environment(target)
    try:
        if host.startswith("tcp://"):
            client = _tls_client(environment)
        else:
            client = docker.from_env(
                environment=environment,
                timeout=settings.DEPLOYMENTS_ENGINE_TIMEOUT_SECONDS,
                use_ssh_client=host.startswith("ssh://"),
            )
        client.ping()
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"The Docker engine of target {target!r} does not answer: {error}"
        ) from None
    return client


def _tls_environment(target: str) -> dict[str, str]:
    """An engine over TCP answers to anyone who reaches its port, so it is
    used only with TLS that verifies the engine's certificate and presents
    ours. docker-py alone would speak plain HTTP without DOCKER_TLS_VERIFY
    and DOCKER_CERT_PATH, and with only the latter it skips verification."""
    verify = os.environ.get("DOCKER_TLS_VERIFY", "")
    cert_path = os.environ.get("DOCKER_CERT_PATH", "")
    if not verify or verify == "0" or not cert_path:
        raise EngineError(
            f"Target {target!r} is a tcp:// engine, which needs verified TLS: "
            "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to a folder with "
            "ca.pem, cert.pem and key.pem."
        )
    return {"DOCKER_TLS_VERIFY": verify, "DOCKER_CERT_PATH": cert_path}


def _tls_client(environment: dict[str, str]) -> docker.DockerClient:
    """A client of an engine over TLS that trusts only DOCKER_CERT_PATH's
    authority.

    requests lets REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) replace a
    session's own CA file, which docker-py relies on, so with either set the
    engine's certificate would be checked against the system's authorities
    and refused. The sessions here ignore the environment; docker-py's own
    API-version probe would run before that could be switched off, so the
    version is asked for first, at the oldest API version.
    """
    connection = kwargs_from_env(environment=environment)
    timeout = settings.DEPLOYMENTS_ENGINE_TIMEOUT_SECONDS
    probe = docker.APIClient(
        **connection, version=MINIMUM_DOCKER_API_VERSION,
        timeout=timeout,
    )  # fmt: skip
    probe.trust_env = False
    try:
        engine_version = probe.version(api_version=False)["ApiVersion"]
    finally:
        probe.close()
    newest = DEFAULT_DOCKER_API_VERSION
    version = newest if version_gte(engine_version, newest) else engine_version
    client = docker.DockerClient(**connection, version=version, timeout=timeout)
    client.api.trust_env = False
    return client


def _engine_call[T](doing: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except (DockerException, requests.RequestException) as error:
        raise EngineError(f"The engine failed while {doing}: {error}") from None


def image_build(
    client: docker.DockerClient,
    *,
    context: Path,
    tag: str,
    build_arguments: dict[str, str],
    on_line: Lines,
    on_wait: Beat = _no_beat,
) -> str:
    """Build with the engine's classic builder, streaming its output;
    return the image id."""

    def build() -> str:
        image_id = ""
        stream = client.api.build(
            path=str(context),
            tag=tag,
            buildargs=build_arguments,
            decode=True,
            rm=True,
            forcerm=True,
            pull=False,
        )
        # Limitation: docker-py gives no way to end a build stream from
        # here, so the engine's build has no deadline of its own; the task's
        # time limit (DEPLOYMENTS_RUN_TIME_LIMIT_SECONDS) ends the run.
        for event in _beating(stream, on_wait=on_wait):
            if "error" in event:
                raise EngineError(f"The build failed: {event['error'].strip()}")
            if "stream" in event and event["stream"].strip():
                on_line(event["stream"].rstrip())
            if "aux" in event and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
        if not image_id:
            raise EngineError("The build ended without an image.")
        return image_id

    return _engine_call("building", build)


def image_save(client: docker.DockerClient, image: str) -> Iterator[bytes]:
    """The image as a ``docker save`` archive, in chunks."""
    try:
        yield from client.api.get_image(image)
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"The engine failed while exporting {image}: {error}"
        ) from None


def image_inspect(client: docker.DockerClient, image: str) -> dict[str, Any]:
    return _engine_call(
        f"inspecting {image}", lambda: dict(client.api.inspect_image(image))
    )


def image_history(client: docker.DockerClient, image: str) -> list[dict[str, Any]]:
    return _engine_call(f"reading {image}'s history", lambda: client.api.history(image))


def image_tag(
    client: docker.DockerClient, image: str, repository: str, tag: str
) -> None:
    _engine_call(f"tagging {image}", lambda: client.api.tag(image, repository, tag))


def image_push(
    client: docker.DockerClient,
    *,
    repository: str,
    tag: str,
    auth: dict[str, str],
    on_line: Lines,
    on_wait: Beat = _no_beat,
) -> str:
    """Push and return the digest. docker-py reports failures only as
    events in the stream, so every event is read and any error fails."""

    def push() -> str:
        digest = ""
        stream = client.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth
        )
        for event in _beating(stream, on_wait=on_wait):
            if "error" in event or "errorDetail" in event:
                message = event.get("error") or event["errorDetail"].get("message")
                raise EngineError(f"The push to {repository} failed: {message}")
            if "aux" in event and "Digest" in event["aux"]:
                digest = event["aux"]["Digest"]
            elif event.get("status") and not event.get("progressDetail"):
                on_line(f"{event.get('id', '')} {event['status']}".strip())
        if not digest.startswith("sha256:"):
            raise EngineError(f"The push to {repository} reported no digest.")
        return digest

    return _engine_call(f"pushing {repository}", push)


def image_pull(
    client: docker.DockerClient,
    *,
    reference: str,
    auth: dict[str, str] | None,
    on_wait: Beat = _no_beat,
) -> str:
    """Pull by digest and return the local image id. A pull by digest
    leaves the image untagged, so it is always run by that digest. Without
    ``auth`` the pull sends no credentials."""

    def pull() -> str:
        repository, _, digest = reference.partition("@")
        for event in client.api.pull(
            repository, tag=digest, stream=True, decode=True, auth_config=auth
        ):
            on_wait()
            if "error" in event:
                raise EngineError(f"The pull of {reference} failed: {event['error']}")
        return str(client.api.inspect_image(reference)["Id"])

    return _engine_call(f"pulling {reference}", pull)


def image_remove(client: docker.DockerClient, image: str) -> bool:
    try:
        client.api.remove_image(image, force=True)
    except (ImageNotFound, NotFound):
        return False
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"The engine failed while removing {image}: {error}"
        ) from None
    return True


def image_remove_unused(client: docker.DockerClient, image_id: str) -> bool:
    """Remove an image unless a container, running or stopped, still uses
    it: one image may serve several deployments (an example's own and a
    copy deployed by reference). The engine refuses with 409 when a
    container takes the image up between the look and the removal; that
    also leaves it in place."""
    try:
        users = client.containers.list(all=True, filters={"ancestor": image_id})
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"The engine failed while listing the users of {image_id}: {error}"
        ) from None
    if users:
        return False
    try:
        client.api.remove_image(image_id, force=True)
    except (ImageNotFound, NotFound):
        return False
    except APIError as error:
        if error.status_code == HTTPStatus.CONFLICT:
            return False
        raise EngineError(
            f"The engine failed while removing {image_id}: {error}"
        ) from None
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"The engine failed while removing {image_id}: {error}"
        ) from None
    return True


@dataclass
class ContainerSpec:
    """A container as the pipeline starts it: the policy checks this exact
    description, and ``container_start`` runs nothing else."""

    image: str
    name: str
    port: int
    user: str = "65534:65534"
    memory: str = "64m"
    cpus: float = 0.5
    pids: int = 64
    environment: dict[str, str] = field(default_factory=dict)
    secret_files: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    health_command: list[str] = field(default_factory=list)
    # Asked for by an example's manifest. The policy refuses any bind,
    # privileged mode, added capability and device, and container_start
    # refuses them too; the rest it applies once the policy passed them.
    binds: list[str] = field(default_factory=list)
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    network_mode: str = ""
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    devices: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    port_bindings: list[str] = field(default_factory=list)


# What a manifest may add that container_start applies. Each keeps the
# container at least as confined as the hardening does: Docker's own
# network, a private or no IPC namespace, Docker's own AppArmor profile.
NETWORK_MODES = {"bridge", "default"}
IPC_MODES = {"private", "none"}
SECURITY_OPTIONS = {
    ("apparmor", "docker-default"),
    ("no-new-privileges", ""),
    ("no-new-privileges", "true"),
}
PROTOCOLS = {"tcp", "udp", "sctp"}
LOOPBACK = {"127.0.0.1", "::1"}


def security_option_parts(option: str) -> tuple[str, str]:
    """A security option as ``key`` and ``value``, however it is spelled:
    spaces and quotes gone, either separator (= or :), any case."""
    spelled = "".join(option.split()).replace('"', "").replace("'", "").lower()
    key, _, value = spelled.replace("=", ":", 1).partition(":")
    return key, value


def security_option_applied(option: str) -> bool:
    return security_option_parts(option) in SECURITY_OPTIONS


@dataclass(frozen=True)
class PortBinding:
    host_ip: str
    host_port: int | None
    container_port: int
    protocol: str


def port_binding_parse(binding: str) -> PortBinding:
    """``[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL]``, as Docker
    writes it; no host address means every interface. Raises ValueError
    for any other shape."""
    parts = binding.rsplit(":", 2)
    host_ip = parts[0] if len(parts) == 3 else ""
    host_port = parts[-2] if len(parts) >= 2 else ""
    container, _, protocol = parts[-1].partition("/")
    protocol = protocol or "tcp"
    if protocol not in PROTOCOLS:
        raise ValueError(f"{protocol!r} is not tcp, udp or sctp")
    numbers = [container] + ([host_port] if host_port else [])
    if not all(number.isdigit() and 1 <= int(number) <= 65535 for number in numbers):
        raise ValueError("a port is a number from 1 to 65535")
    return PortBinding(
        host_ip=host_ip.removeprefix("[").removesuffix("]"),
        host_port=int(host_port) if host_port else None,
        container_port=int(container),
        protocol=protocol,
    )


# Seconds; Docker's own default interval of 30 s would report a healthy
# service as starting for half a minute.
HEALTH_INTERVAL = 0.25
HEALTH_TIMEOUT = 2.0
HEALTH_RETRIES = 3
HEALTH_START_PERIOD = 5.0


def container_start(client: docker.DockerClient, spec: ContainerSpec) -> Container:
    """Start a hardened container: read-only root, every capability
    dropped, no new privileges, a non-root user, tmpfs scratch, limits,
    ports on 127.0.0.1 only, secrets as read-only files.

    The manifest's options the policy passed are applied on top; none can
    undo the hardening, and one that could (or that this function does not
    apply) is refused here too, so nothing asked for is silently dropped."""
    mounts = [
        Mount(target=f"/run/secrets/{name}", source=path, type="bind", read_only=True)
        for name, path in spec.secret_files.items()
    ]
    nanoseconds = 1_000_000_000
    options: dict[str, Any] = {
        "name": spec.name,
        "detach": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true", *_security_options(spec)],
        "user": spec.user,
        "tmpfs": {"/tmp": "rw,noexec,nosuid,nodev,size=16m"},
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,
        "nano_cpus": int(spec.cpus * nanoseconds),
        "pids_limit": spec.pids,
        "ports": _ports(spec),
        "mounts": mounts,
        "environment": spec.environment,
        "labels": spec.labels,
        "restart_policy": {"Name": "no"},
        **_namespaces(spec),
    }
    if spec.health_command:
        options["healthcheck"] = {
            "test": ["CMD", *spec.health_command],
            "interval": int(HEALTH_INTERVAL * nanoseconds),
            "timeout": int(HEALTH_TIMEOUT * nanoseconds),
            "retries": HEALTH_RETRIES,
            "start_period": int(HEALTH_START_PERIOD * nanoseconds),
        }
    return _engine_call(
        f"starting {spec.name}", lambda: client.containers.run(spec.image, **options)
    )


def _refuse(spec: ContainerSpec, words: str) -> EngineError:
    return EngineError(f"{spec.name} was not started: {words}")


def _security_options(spec: ContainerSpec) -> list[str]:
    applied = []
    for option in spec.security_opt:
        if not security_option_applied(option):
            raise _refuse(spec, f"security option {option!r} is not one it applies.")
        key, value = security_option_parts(option)
        if key != "no-new-privileges":
            applied.append(f"{key}={value}")
    return applied


def _ports(spec: ContainerSpec) -> dict[str, list[tuple[str, int | None]]]:
    ports: dict[str, list[tuple[str, int | None]]] = {
        f"{spec.port}/tcp": [("127.0.0.1", None)]
    }
    for text in spec.port_bindings:
        try:
            binding = port_binding_parse(text)
        except ValueError as error:
            raise _refuse(spec, f"port {text!r}: {error}.") from None
        if binding.host_ip not in LOOPBACK:
            raise _refuse(spec, f"port {text!r} would listen beyond 127.0.0.1.")
        # Limitation: a fixed host port stays held by the serving container,
        # so the container meant to replace it fails to start (and the old
        # one keeps serving) until the deployment is torn down.
        key = f"{binding.container_port}/{binding.protocol}"
        ports.setdefault(key, []).append((binding.host_ip, binding.host_port))
    return ports


def _namespaces(spec: ContainerSpec) -> dict[str, str]:
    if spec.binds or spec.privileged or spec.cap_add or spec.devices:
        raise _refuse(
            spec, "host binds, privileged mode, capabilities and devices are refused."
        )
    if spec.pid_mode or spec.uts_mode:
        raise _refuse(spec, "it shares no PID or UTS namespace.")
    options = {}
    network, ipc = spec.network_mode.strip().lower(), spec.ipc_mode.strip().lower()
    if network:
        if network not in NETWORK_MODES:
            raise _refuse(spec, f"network {spec.network_mode!r} is not bridge.")
        options["network_mode"] = network
    if ipc:
        if ipc not in IPC_MODES:
            raise _refuse(spec, f"IPC mode {spec.ipc_mode!r} is not private or none.")
        options["ipc_mode"] = ipc
    return options


def container_health_wait(
    container: Container, *, timeout: float, on_wait: Beat = _no_beat
) -> str:
    """Wait until the container is healthy; return "healthy", "exited", or,
    once ``timeout`` has passed, "unhealthy" or "timeout".

    The engine calls a container unhealthy after a few failed checks past
    its start period, yet keeps checking and calls it healthy at the first
    check that passes: a service slower to start than that still has until
    the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        on_wait()
        _engine_call("reading a container's state", container.reload)
        state = container.attrs["State"]
        if state.get("Status") in {"exited", "dead"}:
            return "exited"
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return "healthy"
        if health is None and state.get("Running"):
            # No health check at all: running is the best there is.
            return "healthy"
        if time.monotonic() >= deadline:
            return "unhealthy" if health == "unhealthy" else "timeout"
        time.sleep(0.05)


def container_host_port(container: Container, port: int) -> int:
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") == "127.0.0.1":
            return int(binding["HostPort"])
    raise EngineError(f"Container {container.name} published no port for {port}.")


def container_find(client: docker.DockerClient, name_or_id: str) -> Container | None:
    try:
        return client.containers.get(name_or_id)
    except NotFound:
        return None
    except (DockerException, requests.RequestException) as error:
        raise EngineError(
            f"The engine failed while finding {name_or_id}: {error}"
        ) from None


def container_image_id(client: docker.DockerClient, name_or_id: str) -> str:
    """The id of the image a container runs; empty when there is no such
    container."""
    container = container_find(client, name_or_id)
    return str(container.attrs.get("Image") or "") if container else ""


def container_remove(client: docker.DockerClient, name_or_id: str) -> bool:
    container = container_find(client, name_or_id)
    if container is None:
        return False
    try:
        container.remove(force=True)
    except NotFound:
        return False
    except (APIError, requests.RequestException) as error:
        raise EngineError(
            f"The engine failed while removing {name_or_id}: {error}"
        ) from None
    return True


def container_logs(container: Container, *, tail: int = 50) -> str:
    raw = _engine_call(
        "reading a container's logs",
        lambda: container.logs(tail=tail, stdout=True, stderr=True),
    )
    return bytes(raw).decode(errors="replace")


def containers_labelled(
    client: docker.DockerClient, labels: dict[str, str]
) -> list[Container]:
    """Containers, running or not, carrying every one of these labels."""
    wanted = [f"{name}={value}" for name, value in labels.items()]
    return _engine_call(
        "listing containers",
        lambda: client.containers.list(all=True, filters={"label": wanted}),
    )
