"""The steps of a run, as the Celery worker carries them out.

Each step is a function of the run's ``Pass``; it raises ``StepFailed``
(or an edge module's error) with a message for the run page, logs lines
through ``Pass.log`` (which masks every secret value) and says what it
established through ``Pass.proved``.
"""

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone
from docker.models.containers import Container

from deployments import buildah, engine, registry
from deployments.engine import ContainerSpec
from deployments.examples import Example, example_load
from deployments.leaks import archive_leaks, base64_forms, json_forms, text_holds
from deployments.models import Deployment, Run, Step
from deployments.policy import policy_check
from deployments.references import ReferenceInvalid, reference_parse
from deployments.signing import provenance_sign, provenance_verify

logger = logging.getLogger(__name__)

MASK = "••••"
FLUSH_SECONDS = 0.25
# A run beats its heartbeat at least this often while it waits on a silent
# tool (a pull, a health check), well inside DEPLOYMENTS_RUN_STALE_SECONDS.
BEAT_SECONDS = 1.0
BUILD_STEP = re.compile(r"^STEP (\d+)/(\d+)")
LAST_LOG_LINES = 15


class StepFailed(Exception):
    pass


ABANDONED = (
    "The reconciliation failed this run while its worker was still carrying "
    "it out (it looked dead)"
)


def secrets_mask(text: str, values: dict[str, str]) -> str:
    """Text with every secret value (as it is, as inside a JSON string, and
    its base64) replaced, longest first, in case a tool echoes one."""
    for value in sorted(values.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, MASK)
            for escaped in json_forms(value):
                text = text.replace(escaped.decode(), MASK)
            encoded = base64.b64encode(value.encode()).decode().rstrip("=")
            text = text.replace(encoded, MASK)
            for form in base64_forms(value.encode()):
                text = text.replace(form.decode(), MASK)
    return text


@dataclass
class Pass:
    """What the steps of one run share while the worker carries it out."""

    run: Run
    secret_values: dict[str, str]
    step: Step | None = None
    example: Example | None = None
    workdir: Path = field(default_factory=Path)
    local_image: str = ""
    repository: str = ""
    healthy_at: float = 0.0
    # The signed provenance statement of the digest being deployed.
    provenance: dict[str, Any] = field(default_factory=dict)
    _client: docker.DockerClient | None = None
    _buffer: list[str] = field(default_factory=list)
    _chores: list[threading.Thread] = field(default_factory=list)
    _flushed: float = 0.0
    _beaten: float = 0.0

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.engine_client(self.run.target)
        return self._client

    def aside(self, chore: Callable[[], object]) -> None:
        """Carry out ``chore`` in a thread beside the steps that follow,
        which spend their time waiting on the engine; the run ends only
        after it (``chores_wait``). A chore reports nothing and raises
        nothing."""
        thread = threading.Thread(target=chore, daemon=True)
        thread.start()
        self._chores.append(thread)

    def chores_wait(self) -> None:
        for thread in self._chores:
            thread.join()
        self._chores.clear()

    def mask(self, text: str) -> str:
        return secrets_mask(text, self.secret_values)

    def log(self, line: str) -> None:
        self._buffer.append(self.mask(line.rstrip()) + "\n")
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def beat(self) -> None:
        """Move the heartbeat, at most every BEAT_SECONDS: a long wait is
        not a dead worker."""
        if time.monotonic() - self._beaten >= BEAT_SECONDS:
            self._beaten = time.monotonic()
            Run.objects.filter(pk=self.run.pk).update(heartbeat=timezone.now())

    def flush(self) -> None:
        self._flushed = self._beaten = time.monotonic()
        now = timezone.now()
        Run.objects.filter(pk=self.run.pk).update(heartbeat=now)
        if self.step is None or not self._buffer:
            return
        chunk, self._buffer = "".join(self._buffer), []
        Step.objects.filter(pk=self.step.pk).update(log=Concat(F("log"), Value(chunk)))

    def progress(self, percent: int) -> None:
        assert self.step is not None
        Step.objects.filter(pk=self.step.pk).update(progress=min(max(percent, 0), 100))

    def proved(self, text: str) -> None:
        assert self.step is not None
        self.step.proof = self.mask(text)
        Step.objects.filter(pk=self.step.pk).update(proof=self.step.proof)


def run_auth() -> dict[str, str]:
    username, password = registry.registry_auth()
    return {"username": username, "password": password}


def _example(state: Pass) -> Example:
    if state.example is None:
        state.example = example_load(state.run.example)
    return state.example


def _deployment(state: Pass) -> Deployment | None:
    return Deployment.objects.filter(
        name=state.run.subject, target=state.run.target
    ).first()


def _spec(state: Pass, image: str) -> ContainerSpec:
    run = state.run
    name = container_name(run)
    if run.example:
        spec = _example(state).container_spec(image=image, name=name)
    else:
        spec = ContainerSpec(image=image, name=name, port=run.port or 8080)
    spec.labels = {
        "lessongraph.run": str(run.pk),
        "lessongraph.deployment": run.subject,
        "lessongraph.target": run.target,
        "lessongraph.instance": settings.DEPLOYMENTS_INSTANCE,
    }
    return spec


def _policy(state: Pass, image: str) -> ContainerSpec:
    """The container that would start from this image, once the policy
    passed it; the deploy step starts this very description."""
    spec = _spec(state, image)
    refusals = policy_check(
        spec,
        allowed_registries=settings.DEPLOYMENTS_ALLOWED_REGISTRIES,
        require_digest=True,
        site_ports=_site_ports(),
    )
    if refusals:
        raise StepFailed(
            "Refused by the policy before anything ran: "
            + "; ".join(str(refusal) for refusal in refusals)
        )
    return spec


def _site_ports() -> set[int]:
    """The loopback port of the site's registry, which the engine and
    buildah send its credentials to."""
    host, _, port = settings.DEPLOYMENTS_REGISTRY.rpartition(":")
    loopback = host in {"127.0.0.1", "localhost", "[::1]"}
    return {int(port)} if loopback and port.isdigit() else set()


def step_check(state: Pass) -> None:
    """The example (or image) and its settings pass the policy."""
    run = state.run
    placeholder = "sha256:" + "0" * 64
    if run.kind == Run.Kind.EXAMPLE:
        example = _example(state)
        state.repository = f"{settings.DEPLOYMENTS_REGISTRY}/examples/{example.slug}"
        _policy(state, f"{state.repository}@{placeholder}")
        state.log(f"manifest: port {example.port}, health {example.health_path}")
        state.log(f"build-time secrets: {', '.join(example.build_secrets) or 'none'}")
        state.log(f"run-time secrets: {', '.join(example.run_secrets) or 'none'}")
        state.proved(
            "The example and its deployment pass every policy rule: no Docker "
            "socket or folder above it, a non-root user, no privileged mode, "
            "no added capabilities, no host namespaces, no devices, security "
            "profiles on, no DOCKER_HOST, ports on 127.0.0.1 only and none of the "
            "registry's, registry "
            f"{settings.DEPLOYMENTS_REGISTRY} allowed, deployed by digest."
        )
        return
    if run.kind == Run.Kind.ROLLBACK:
        deployment = _deployment(state)
        if deployment is None or not deployment.previous_digest:
            raise StepFailed(
                f"{run.subject} has no earlier healthy digest to roll back to."
            )
        state.repository = deployment.previous_repository or deployment.repository
        run.digest = deployment.previous_digest
    else:
        reference = reference_parse(run.image)
        state.repository = reference.name
        run.digest = reference.digest or _resolve(
            state, reference.repository, reference.tag
        )
        state.log(f"{run.image} is {run.digest}")
    Run.objects.filter(pk=run.pk).update(digest=run.digest)
    _policy(state, f"{state.repository}@{run.digest}")
    state.proved(
        f"{state.repository}@{run.digest} passes every policy rule: allowed "
        "registry, named by digest, hardened container settings."
    )


def _resolve(state: Pass, repository: str, tag: str) -> str:
    reference = reference_parse(state.run.image)
    if reference.registry != settings.DEPLOYMENTS_REGISTRY:
        raise StepFailed(
            f"Only images in {settings.DEPLOYMENTS_REGISTRY} can be named by tag; "
            f"give {reference.name} by digest."
        )
    digest = registry.manifest_digest(repository, tag or "latest")
    if digest is None:
        raise StepFailed(f"{state.run.image} is not in the registry.")
    return digest


def _secret_file(folder: Path, name: str, value: str, owner: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # The file belongs to the container's user, a UID that daemons on the
    # host share (65534 is nobody): only root may reach it. The container
    # still reads it, through its bind mount, which needs no way through the
    # host's folders.
    os.chmod(folder, 0o700)
    path = folder / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(descriptor, "w") as file:
        file.write(value)
    if owner is not None and os.geteuid() == 0:
        uid, _, gid = owner.partition(":")
        os.chown(path, int(uid), int(gid or uid))
    return path


def step_build(state: Pass) -> None:
    run, example = state.run, _example(state)
    context = state.workdir / "context"
    # Links stay links: what one inside the context points to is copied
    # once, as itself.
    shutil.copytree(example.context, context, symlinks=True)
    run.source_hash = example.source_hash()
    Run.objects.filter(pk=run.pk).update(source_hash=run.source_hash)
    state.log(f"source sha256 {run.source_hash}")
    state.local_image = local_image_name(run)
    if run.builder == Run.Builder.DOCKER:
        if example.build_secrets:
            raise StepFailed(
                "The Docker engine builder refuses this example: it needs "
                f"build-time secrets ({', '.join(example.build_secrets)}), and "
                "this engine builds without BuildKit, so it cannot mount them; "
                "an ARG or ENV would bake the value into the image history. "
                "Build it with buildah."
            )
        _base_pull(state)
        engine.image_build(
            state.client,
            context=context,
            tag=state.local_image,
            build_arguments={"BASE_IMAGE": settings.DEPLOYMENTS_BASE_IMAGE},
            on_line=lambda line: _build_line(state, line),
            on_wait=state.beat,
        )
        state.proved(
            "Built by the Docker engine's builder; the example needs no build-time secret."
        )
        return
    secret_files = {
        name: _secret_file(
            state.workdir / "build-secrets", name, state.secret_values[name], None
        )
        for name in example.build_secrets
    }
    try:
        buildah.buildah_build(
            context=context,
            tag=state.local_image,
            secret_files=secret_files,
            on_line=lambda line: _build_line(state, line),
            on_wait=state.beat,
        )
    finally:
        shutil.rmtree(state.workdir / "build-secrets", ignore_errors=True)
    mounts = ", ".join(example.build_secrets)
    state.proved(
        "Built by buildah without a daemon: no Docker socket and no "
        "privileged container were involved."
        + (
            f" {mounts} came in as a secret mount for the RUN step that needs it."
            if mounts
            else ""
        )
    )


def _base_pull(state: Pass) -> None:
    base = reference_parse(settings.DEPLOYMENTS_BASE_IMAGE)
    site = base.registry == settings.DEPLOYMENTS_REGISTRY
    for event in state.client.api.pull(
        base.name,
        tag=base.tag,
        stream=True,
        decode=True,
        auth_config=run_auth() if site else None,
    ):
        state.beat()
        if "error" in event:
            raise StepFailed(f"The base image could not be pulled: {event['error']}")


def _build_line(state: Pass, line: str) -> None:
    state.log(line)
    matched = BUILD_STEP.match(line.strip())
    if matched:
        state.progress(int(matched[1]) * 100 // max(int(matched[2]), 1))


def step_leak_gate(state: Pass) -> None:
    run, archive = state.run, state.workdir / "image.tar"
    if run.builder == Run.Builder.DOCKER:
        with open(archive, "wb") as file:
            for chunk in engine.image_save(state.client, state.local_image):
                file.write(chunk)
                state.beat()
    else:
        buildah.buildah_archive(state.local_image, archive, on_wait=state.beat)
    search = archive_leaks(archive, state.secret_values.values(), on_file=state.beat)
    archive.unlink(missing_ok=True)
    if search.found:
        _local_image_remove(state)
        raise StepFailed(
            "The leak gate found a secret value in the image, which was removed: "
            + "; ".join(search.found[:10])
        )
    state.log(f"searched {search.files} files in {search.layers} layers")
    state.proved(
        f"Searched the image history, its configuration and {search.files} "
        f"files in {search.layers} layers for each of "
        f"{len(state.secret_values)} secret values (plain, as in JSON and "
        "base64): none found."
    )


def _local_image_remove(state: Pass) -> None:
    if not state.local_image:
        return
    if state.run.builder == Run.Builder.DOCKER:
        engine.image_remove(state.client, state.local_image)
    else:
        buildah.buildah_remove(state.local_image)


def step_push(state: Pass) -> None:
    run = state.run
    tag = f"run-{run.pk}"
    try:
        run.digest = _image_push(state, tag)
    except (engine.EngineError, buildah.BuildahError) as error:
        if registry.registry_answers():
            raise
        # The tools' own words for a registry that is down run to several
        # lines of retries: they stay in the step's log (buildah's are there
        # already) and the run page says it plainly.
        if isinstance(error, engine.EngineError):
            state.log(str(error))
        raise StepFailed(
            f"The registry at {settings.DEPLOYMENTS_REGISTRY} does not answer, so "
            "nothing was pushed and nothing was deployed; the push step's log has "
            "the push tool's own words. Start the registry (`manage.py registry "
            "start`) and run again."
        ) from None
    Run.objects.filter(pk=run.pk).update(digest=run.digest)
    if run.builder == Run.Builder.DOCKER:
        _local_image_remove(state)
    else:
        # buildah's copy goes while the deploy step waits on the engine.
        state.aside(lambda: buildah.buildah_remove(state.local_image))
    state.log(f"digest {run.digest}")
    state.proved(
        f"Pushed to {settings.DEPLOYMENTS_REGISTRY} with the site's registry "
        f"credentials; the registry holds it as {run.digest}."
    )


def _image_push(state: Pass, tag: str) -> str:
    """Push the built image under ``tag``; return the digest it has."""
    if state.run.builder == Run.Builder.DOCKER:
        engine.image_tag(state.client, state.local_image, state.repository, tag)
        return engine.image_push(
            state.client,
            repository=state.repository,
            tag=tag,
            auth=run_auth(),
            on_line=state.log,
            on_wait=state.beat,
        )
    return buildah.buildah_push(
        image=state.local_image,
        destination=f"{state.repository}:{tag}",
        on_line=state.log,
        on_wait=state.beat,
    )


def build_fingerprint(value: str) -> str:
    """What an example's image keeps of a build-time secret, and shows
    through its proof path: SHA-256 of the value after a fixed prefix."""
    return hashlib.sha256(f"lessongraph-build-proof:{value}".encode()).hexdigest()


def step_sign(state: Pass) -> None:
    run = state.run
    # A rollback deploys an image built before a build-time secret may have
    # changed; the statement keeps what the image was built with.
    fingerprints = {
        name: build_fingerprint(state.secret_values[name])
        for name in (_example(state).build_secrets if run.example else ())
    }
    statement = {
        "image": state.repository,
        "digest": run.digest,
        "source_sha256": run.source_hash,
        "builder": run.builder,
        "started_by": run.started_by.username,
        "run": run.pk,
        "signed_at": timezone.now().isoformat(),
        "build_secret_fingerprints": fingerprints,
    }
    document = provenance_sign(statement)
    path = reference_parse(state.repository).repository
    registry.signature_store(path, run.digest, document)
    state.log(json.dumps(statement, sort_keys=True))
    said = ", ".join(f"the fingerprint of {name}" for name in fingerprints)
    state.proved(
        "Signed a provenance statement (source hash, builder, who started the "
        f"run, when, digest{', ' + said if said else ''}) with the site's "
        f"Ed25519 key; stored beside the image as "
        f"{registry.signature_tag(run.digest)}."
    )


def step_deploy(state: Pass) -> None:
    """1. Verify the signature beside the digest.
    2. Check the exact container against the policy.
    3. Pull by digest; start it hardened, secrets as read-only files.
    4. Wait until healthy, then retire the previous container; if it never
       becomes healthy, remove it and leave the previous one serving."""
    run = state.run
    path = reference_parse(state.repository).repository
    statement = provenance_verify(
        registry.signature_fetch(path, run.digest), digest=run.digest
    )
    state.provenance = statement
    state.log(
        f"signature verified: built by {statement.get('builder')} in run {statement.get('run')}"
    )
    image = f"{state.repository}@{run.digest}"
    spec = _policy(state, image)
    # The site's credentials go to the site's registry only: another
    # allowed registry (or whatever realm it names) never sees them.
    site = reference_parse(image).registry == settings.DEPLOYMENTS_REGISTRY
    engine.image_pull(
        state.client,
        reference=image,
        auth=run_auth() if site else None,
        on_wait=state.beat,
    )
    secret_folder = settings.DEPLOYMENTS_DIR / "secrets" / spec.name
    for name in _run_secret_names(state):
        path_on_host = _secret_file(
            secret_folder, name, state.secret_values[name], spec.user
        )
        spec.secret_files[name] = str(path_on_host)
    _own_container_remove(state, spec.name)
    started = time.monotonic()
    container = engine.container_start(state.client, spec)
    timeout = settings.DEPLOYMENTS_HEALTH_TIMEOUT_SECONDS
    outcome = engine.container_health_wait(
        container, timeout=timeout, on_wait=state.beat
    )
    if outcome == "healthy" and not spec.health_command:
        outcome = _answer_wait(
            container, spec.port, _health_path(state), timeout=timeout,
            on_wait=state.beat,
        )  # fmt: skip
    if outcome != "healthy":
        last = state.mask(engine.container_logs(container, tail=LAST_LOG_LINES))
        engine.container_remove(state.client, spec.name)
        shutil.rmtree(secret_folder, ignore_errors=True)
        for line in last.splitlines():
            state.log(f"| {line}")
        serving = _deployment(state)
        keeps = (
            f"; {serving.container_name} keeps serving"
            if serving and serving.status == Deployment.Status.LIVE
            else ""
        )
        raise StepFailed(
            f"The new container never became healthy ({outcome}){keeps}. "
            f"Its last log lines:\n{last.strip() or '(none)'}"
        )
    state.healthy_at = time.time()
    seconds = time.monotonic() - started
    host_port = engine.container_host_port(container, spec.port)
    retired = _deployment_switch(state, spec, container.id or "", host_port)
    state.log(f"healthy after {seconds:.2f} s on 127.0.0.1:{host_port}")
    mounted = ", ".join(f"/run/secrets/{name}" for name in spec.secret_files)
    state.proved(
        f"The digest's signature verified under the site's key. Healthy after "
        f"{seconds:.1f} s: read-only root, every capability dropped, no new "
        f"privileges, user {spec.user}, {spec.memory} memory, {spec.cpus} CPU, "
        f"{spec.pids} processes, /tmp on tmpfs, port {spec.port} published on "
        f"127.0.0.1:{host_port} only"
        + (
            f", {mounted} mounted read-only (no secret in the environment)"
            if mounted
            else ""
        )
        + _options_said(spec)
        + (f". Retired {retired}." if retired else ".")
    )


def _options_said(spec: ContainerSpec) -> str:
    """The manifest's own options, as the container got them."""
    said = [
        *([f"network {spec.network_mode}"] if spec.network_mode else []),
        *([f"IPC {spec.ipc_mode}"] if spec.ipc_mode else []),
        *(f"security option {option}" for option in spec.security_opt),
        *(f"port {binding}" for binding in spec.port_bindings),
        *(f"variable {name}" for name in spec.environment),
    ]
    return f"; from the manifest: {', '.join(said)}" if said else ""


def _health_path(state: Pass) -> str:
    run = state.run
    return _example(state).health_path if run.example else (run.health_path or "/")


def _answer_wait(
    container: Container,
    port: int,
    path: str,
    *,
    timeout: float,
    on_wait: Callable[[], None],
) -> str:
    """An image deployed by reference gets no health command of ours (its
    tools are unknown), so running is not yet healthy: its health path must
    answer 200 through the published port before it replaces anything."""
    base = f"http://127.0.0.1:{engine.container_host_port(container, port)}"
    deadline = time.monotonic() + timeout
    while True:
        on_wait()
        try:
            if requests.get(base + path, timeout=2).status_code == 200:
                return "healthy"
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(0.1)


def _run_secret_names(state: Pass) -> tuple[str, ...]:
    if state.run.example:
        return _example(state).run_secrets
    return ()


def _deployment_switch(
    state: Pass, spec: ContainerSpec, container_id: str, host_port: int
) -> str:
    """Point the deployment at the new container, then remove the one it
    replaces. Return the retired container's name, if any.

    Only a run still running switches: one the reconciliation failed
    meanwhile (its worker looked dead) leaves the deployment as it was, and
    its new container goes."""
    run = state.run
    retired = ""
    with transaction.atomic():
        # Moving the heartbeat on the condition that the run still runs
        # locks its row until the switch is saved: the reconciliation, which
        # fails only runs whose heartbeat is stale, waits and then finds it
        # fresh; had it come first, this finds nothing to update.
        alive = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            heartbeat=timezone.now()
        )
        if alive == 1:
            retired = _deployment_point(state, spec, container_id, host_port)
    if alive != 1:
        engine.container_remove(state.client, spec.name)
        shutil.rmtree(
            settings.DEPLOYMENTS_DIR / "secrets" / spec.name, ignore_errors=True
        )
        raise StepFailed(
            f"{ABANDONED}; its new container was removed and {run.subject} was "
            "left as it was."
        )
    if retired:
        _container_retire(state.client, retired)
    return retired


def _own_container_remove(state: Pass, name: str) -> None:
    """Remove this site's container of that name, left by an earlier try.

    Names can coincide across sites sharing an engine (instance "a"
    deploying "b-web" and instance "a-b" deploying "web" both name
    ``a-b-web-r5``): another site's container is never removed, and the
    step fails saying so."""
    container = engine.container_find(state.client, name)
    if container is None:
        return
    if not _ours(container):
        raise StepFailed(
            f"A container named {name} that this site did not start exists on "
            f"{state.run.target} (another site sharing the engine?); it was left "
            "alone and nothing was started."
        )
    engine.container_remove(state.client, container.id or name)


def _ours(container: Container) -> bool:
    labels = container.labels or {}
    return labels.get("lessongraph.instance") == settings.DEPLOYMENTS_INSTANCE


def _container_retire(client: docker.DockerClient, name: str) -> None:
    """Remove a container, its secret files and its image, unless another
    container still uses that image (the one replacing it, or another
    deployment of the same digest). A later rollback pulls the image again
    by digest from the registry, which keeps it. A container of that name
    that another site started is left alone."""
    container = engine.container_find(client, name)
    if container is not None and not _ours(container):
        logger.warning("Container %s is not this site's; not retired", name)
        return
    image = engine.container_image_id(client, name)
    engine.container_remove(client, name)
    shutil.rmtree(settings.DEPLOYMENTS_DIR / "secrets" / name, ignore_errors=True)
    if image:
        engine.image_remove_unused(client, image)


def _deployment_point(
    state: Pass, spec: ContainerSpec, container_id: str, host_port: int
) -> str:
    """Save the deployment as serving the new container; return the name of
    the live container it served before, if another."""
    run = state.run
    deployment, _ = Deployment.objects.get_or_create(
        name=run.subject,
        target=run.target,
        defaults={"repository": state.repository, "owner": run.started_by},
    )
    if not deployment.claimable_by(run.started_by):
        raise StepFailed(
            f"{run.subject} on {run.target} belongs to another instructor; "
            "this run may not replace its container."
        )
    if deployment.status == Deployment.Status.TORN_DOWN:
        deployment.owner = run.started_by
        # Deployed anew: what ran before the tear down (another owner's,
        # perhaps) is nothing to roll back to.
        deployment.previous_digest = ""
        deployment.previous_repository = ""
    live = deployment.status == Deployment.Status.LIVE
    old_name = deployment.container_name
    retired = old_name if live and old_name and old_name != spec.name else ""
    if live and deployment.digest and deployment.digest != run.digest:
        deployment.previous_digest = deployment.digest
        deployment.previous_repository = deployment.repository
    deployment.example = run.example
    deployment.repository = state.repository
    deployment.digest = run.digest
    deployment.container_id = container_id
    deployment.container_name = spec.name
    deployment.port = spec.port
    deployment.host_port = host_port
    deployment.health_path = _health_path(state)
    deployment.status = Deployment.Status.LIVE
    deployment.last_run = run
    deployment.full_clean()
    deployment.save()
    return retired


def step_verify(state: Pass) -> None:
    run = state.run
    deployment = _deployment(state)
    if deployment is None or not deployment.host_port:
        raise StepFailed(f"{run.subject} has no running container to verify.")
    base = f"http://127.0.0.1:{deployment.host_port}"
    try:
        answer = requests.get(base + deployment.health_path, timeout=5)
    except requests.RequestException as error:
        raise StepFailed(f"The service does not answer on {base}: {error}") from None
    if answer.status_code != 200:
        raise StepFailed(f"{deployment.health_path} answered {answer.status_code}.")
    if state.healthy_at:
        state.log(f"first answer {time.time() - state.healthy_at:.2f} s after healthy")
    proofs = _secret_proofs(state, base)
    container = engine.container_find(state.client, deployment.container_name)
    if container is None:
        raise StepFailed(f"Container {deployment.container_name} is gone.")
    inspected = json.dumps(container.attrs)
    leaked = [
        name
        for name, value in state.secret_values.items()
        if len(value) >= 4 and text_holds(inspected, value)
    ]
    if leaked:
        raise StepFailed(f"docker inspect shows the value of {', '.join(leaked)}.")
    host = container.attrs["HostConfig"]
    sockets = [
        mount.get("Source", "")
        for mount in container.attrs.get("Mounts", [])
        if mount.get("Source", "").rstrip("/")
        in {"/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/"}
    ]
    if sockets or host.get("Privileged") or not host.get("ReadonlyRootfs"):
        raise StepFailed("The running container is not as hardened as it was started.")
    state.proved(
        f"The service answered 200 at {deployment.health_path} through "
        f"127.0.0.1:{deployment.host_port}. {proofs}docker inspect of the "
        "running container shows no secret value and no Docker socket; its root "
        "is read-only and it is not privileged."
    )


def _secret_proofs(state: Pass, base: str) -> str:
    run = state.run
    if not run.example or not _example(state).proof_path:
        return ""
    example = _example(state)
    nonce = secrets.token_hex(16)
    try:
        answer = requests.get(
            f"{base}{example.proof_path}", params={"nonce": nonce}, timeout=5
        )
        proof: dict[str, Any] = answer.json()
    except (requests.RequestException, ValueError) as error:
        raise StepFailed(f"{example.proof_path} gave no proof: {error}") from None
    said = []
    signed = state.provenance.get("build_secret_fingerprints") or {}
    for name in example.build_secrets:
        current = build_fingerprint(state.secret_values[name])
        expected = signed.get(name) or current
        if proof.get("build_secret_fingerprint") != expected:
            raise StepFailed(f"The service's fingerprint of {name} does not match.")
        if expected == current:
            said.append(f"{name} (its fingerprint matches)")
        else:
            said.append(
                f"{name} as it was when the image was built (its fingerprint "
                "matches the signed one; the value has changed since)"
            )
    for name in example.run_secrets:
        expected = hashlib.sha256(
            f"{nonce}:{state.secret_values[name]}".encode()
        ).hexdigest()
        if proof.get("run_secret_proof") != expected:
            raise StepFailed(f"The service's answer keyed by {name} does not match.")
        said.append(f"{name} (its answer to a fresh nonce matches)")
    if any(text_holds(answer.text, value) for value in state.secret_values.values()):
        raise StepFailed("The proof endpoint revealed a secret value.")
    return f"It proved it holds {' and '.join(said)} without showing either. "


def step_teardown(state: Pass) -> None:
    run = state.run
    containers = engine.containers_labelled(
        state.client,
        {
            "lessongraph.deployment": run.subject,
            "lessongraph.target": run.target,
            "lessongraph.instance": settings.DEPLOYMENTS_INSTANCE,
        },
    )
    removed = []
    for container in containers:
        _container_retire(state.client, container.name or container.id or "")
        removed.append(container.name or "")
        state.log(f"removed {container.name} and its image")
    Deployment.objects.filter(name=run.subject, target=run.target).update(
        status=Deployment.Status.TORN_DOWN,
        host_port=None,
        container_id="",
        last_run=run,
    )
    state.proved(
        f"Removed {len(removed)} container(s), their images and secret files; nothing of "
        f"{run.subject} runs on {run.target}."
    )


STEPS: dict[str, list[tuple[str, Callable[[Pass], None]]]] = {
    Run.Kind.EXAMPLE: [
        ("check", step_check),
        ("build", step_build),
        ("leak gate", step_leak_gate),
        ("push", step_push),
        ("sign", step_sign),
        ("deploy", step_deploy),
        ("verify", step_verify),
    ],
    Run.Kind.IMAGE: [
        ("check", step_check),
        ("deploy", step_deploy),
        ("verify", step_verify),
    ],
    Run.Kind.ROLLBACK: [
        ("check", step_check),
        ("deploy", step_deploy),
        ("verify", step_verify),
    ],
    Run.Kind.TEARDOWN: [("teardown", step_teardown)],
}


def failed_run_cleanup(state: Pass) -> None:
    """What a failed run leaves behind goes: its local image and any
    container of it that no deployment points at."""
    state.chores_wait()
    try:
        _local_image_remove(state)
        orphans_remove(state.client, run=state.run)
    except (engine.EngineError, buildah.BuildahError):
        logger.warning("Run %s: cleanup after failure was incomplete", state.run.pk)


def local_image_name(run: Run) -> str:
    instance = settings.DEPLOYMENTS_INSTANCE
    return f"localhost/{instance}/run-{run.pk}:{run.example or run.subject}"


def container_name(run: Run) -> str:
    return f"{settings.DEPLOYMENTS_INSTANCE}-{run.subject}-r{run.pk}"


def orphans_remove(client: docker.DockerClient, *, run: Run) -> int:
    """Remove the run's containers that no live deployment points at, and
    its local images; return how many containers went."""
    serving = set(
        Deployment.objects.filter(status=Deployment.Status.LIVE).values_list(
            "container_name", flat=True
        )
    )
    removed = 0
    labels = {
        "lessongraph.run": str(run.pk),
        "lessongraph.instance": settings.DEPLOYMENTS_INSTANCE,
    }
    for container in engine.containers_labelled(client, labels):
        if container.name not in serving:
            engine.container_remove(client, container.id or "")
            shutil.rmtree(
                settings.DEPLOYMENTS_DIR / "secrets" / (container.name or "-"),
                ignore_errors=True,
            )
            removed += 1
    engine.image_remove(client, local_image_name(run))
    buildah.buildah_remove(local_image_name(run))
    run_images_remove(client, run=run)
    return removed


def run_repository(run: Run) -> str:
    """The repository a run pushes to or pulls from (as the check step
    names it), or "" when it names none yet."""
    if run.kind == Run.Kind.EXAMPLE:
        return f"{settings.DEPLOYMENTS_REGISTRY}/examples/{run.example}"
    if run.kind == Run.Kind.IMAGE:
        return reference_parse(run.image).name if run.image else ""
    deployment = Deployment.objects.filter(name=run.subject, target=run.target).first()
    if deployment is None:
        return ""
    if run.kind == Run.Kind.ROLLBACK and run.digest == deployment.previous_digest:
        return deployment.previous_repository or deployment.repository
    return deployment.repository


def run_images_remove(client: docker.DockerClient, *, run: Run) -> None:
    """Remove what a failed run put in the engine's image store: the tag the
    Docker builder pushed from, and the image it pulled by digest, unless a
    live deployment on the target runs that digest."""
    try:
        repository = run_repository(run)
    except ReferenceInvalid:
        return
    if not repository:
        return
    engine.image_remove(client, f"{repository}:run-{run.pk}")
    serving = Deployment.objects.filter(
        target=run.target, status=Deployment.Status.LIVE, digest=run.digest
    )
    if run.digest and not serving.exists():
        engine.image_remove(client, f"{repository}@{run.digest}")


def secret_folders_sweep() -> list[str]:
    """Remove the run-time secret folders of this instance that belong to
    no container of it on any target and to no active run (a worker killed
    between writing them and starting its container leaves them). Nothing
    goes while a target does not answer: its containers are unknown.
    Return the names of the folders removed.

    1. List the folders, then the active runs, then the containers: a
       folder a run is writing now is that run's, active when asked.
    2. Remove the folders none of them names."""
    root = settings.DEPLOYMENTS_DIR / "secrets"
    prefix = f"{settings.DEPLOYMENTS_INSTANCE}-"
    folders = sorted(
        path for path in root.glob(f"{prefix}*") if path.is_dir()
    ) if root.is_dir() else []  # fmt: skip
    if not folders:
        return []
    kept = {container_name(run) for run in Run.objects.filter(status__in=Run.ACTIVE)}
    labels = {"lessongraph.instance": settings.DEPLOYMENTS_INSTANCE}
    for target in settings.DEPLOYMENTS_TARGETS:
        try:
            client = engine.engine_client(target)
            kept.update(
                container.name or ""
                for container in engine.containers_labelled(client, labels)
            )
        except engine.EngineError as error:
            logger.warning("Secret folders kept: target %s: %s", target, error)
            return []
    removed = []
    for folder in folders:
        if folder.name not in kept:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
