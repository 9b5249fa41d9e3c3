"""Worked examples: a build context and a manifest, kept beside the lesson
they belong to under ``DEPLOYMENTS_EXAMPLES_DIR/<lesson slug>/``.

``manifest.yaml`` names the port, the health path, the secrets needed at
build time and at run time, the resources asked for, and optionally extra
container options under ``run`` (which the policy then judges).
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from deployments.engine import (
    IPC_MODES,
    NETWORK_MODES,
    ContainerSpec,
    port_binding_parse,
    security_option_applied,
)
from deployments.policy import namespace_shared, security_option_unconfined

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MEMORY = re.compile(r"^[1-9][0-9]{0,4}[km]$")
# A URL path the health command and the verify step request as written:
# printable ASCII, no spaces; as long as a deployment keeps.
URL_PATH = re.compile(r"/[!-~]{0,199}")
USER = re.compile(r"^[0-9]{1,10}(?::[0-9]{1,10})?$")
RUN_OPTIONS = {
    "volumes": "binds",
    "privileged": "privileged",
    "cap_add": "cap_add",
    "network_mode": "network_mode",
    "pid_mode": "pid_mode",
    "ipc_mode": "ipc_mode",
    "uts_mode": "uts_mode",
    "devices": "devices",
    "security_opt": "security_opt",
    "environment": "environment",
    "ports": "port_bindings",
}
KEYS = {
    "title", "port", "health_path", "proof_path", "build_secrets", "run_secrets",
    "resources", "user", "run",
}  # fmt: skip


class ExampleInvalid(ValueError):
    pass


class _ManifestLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping:
    PyYAML would keep the last silently, and someone reading the manifest
    may well stop at the first."""

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                twice = key in seen
            except TypeError:
                # An unhashable key: the safe loader refuses it, saying so.
                continue
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads digits joined by colons as one base-60 number: an unquoted
# port binding 80:80 would come through as 4880. The manifest takes
# integers as YAML 1.2 writes them, so 80:80 stays the text it looks like.
_INTEGER = "tag:yaml.org,2002:int"
_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _INTEGER]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ManifestLoader.add_implicit_resolver(
    _INTEGER,
    re.compile(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
    ),
    list("-+0123456789"),
)


@dataclass(frozen=True)
class Example:
    slug: str
    title: str
    folder: Path
    port: int
    health_path: str
    proof_path: str
    build_secrets: tuple[str, ...]
    run_secrets: tuple[str, ...]
    memory: str
    cpus: float
    pids: int
    user: str
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def context(self) -> Path:
        return self.folder / "context"

    @property
    def secret_names(self) -> tuple[str, ...]:
        return self.build_secrets + self.run_secrets

    def source_hash(self) -> str:
        """SHA-256 over the manifest and every context file, names
        included, in a stable order."""
        digest = hashlib.sha256()
        for path in sorted([self.folder / "manifest.yaml", *self.context.rglob("*")]):
            if path.is_file():
                digest.update(str(path.relative_to(self.folder)).encode() + b"\0")
                # In pieces: a context may hold files larger than memory.
                with path.open("rb") as file:
                    while piece := file.read(1 << 20):
                        digest.update(piece)
                digest.update(b"\0")
        return digest.hexdigest()

    def container_spec(self, *, image: str, name: str) -> ContainerSpec:
        spec = ContainerSpec(
            image=image,
            name=name,
            port=self.port,
            user=self.user,
            memory=self.memory,
            cpus=self.cpus,
            pids=self.pids,
            health_command=[
                "wget", "-q", "-O", "/dev/null",
                f"http://127.0.0.1:{self.port}{self.health_path}",
            ],
        )  # fmt: skip
        for key, attribute in RUN_OPTIONS.items():
            if key in self.run:
                setattr(spec, attribute, self.run[key])
        return spec


def _run_read(slug: str, run: Any) -> dict[str, Any]:
    """The manifest's extra container options, in the one shape the policy
    judges and the engine is given.

    Each option is either applied by ``engine.container_start`` once the
    policy passed it, or refused: by the policy, naming its rule (binds,
    privileged mode, capabilities, devices, shared namespaces, profiles
    switched off, DOCKER_HOST, ports beyond 127.0.0.1), or here, naming the
    option, when the engine would not apply it. None is accepted and then
    dropped."""
    if not isinstance(run, dict) or set(run) - set(RUN_OPTIONS):
        raise ExampleInvalid(
            f"{slug}: run may hold only {', '.join(sorted(RUN_OPTIONS))}."
        )
    read: dict[str, Any] = {}
    for key, value in run.items():
        if key == "environment":
            read[key] = _environment_read(slug, value)
        elif key == "volumes":
            read[key] = _volumes_read(slug, value)
        elif key == "privileged":
            if not isinstance(value, bool):
                raise ExampleInvalid(f"{slug}: run.privileged must be true or false.")
            read[key] = value
        elif key.endswith("_mode"):
            read[key] = _mode_read(slug, key, value)
        elif key == "security_opt":
            read[key] = _security_options_read(slug, value)
        elif key == "ports":
            read[key] = _ports_read(slug, value)
        else:
            read[key] = _strings_read(slug, key, value)
    return read


MODES_APPLIED = {"network_mode": NETWORK_MODES, "ipc_mode": IPC_MODES}
MODES_REFUSED = {
    "network_mode": "a deployment joins Docker's bridge network (write bridge), "
    "where its port is published on 127.0.0.1; none would leave it no port and "
    "a named network may not exist on the target",
    "ipc_mode": "write private or none; shareable would let other containers "
    "join this one's IPC namespace",
    "pid_mode": "a deployment keeps a PID namespace of its own; leave it out",
    "uts_mode": "a deployment keeps a UTS namespace of its own; leave it out",
}


def _mode_read(slug: str, key: str, value: Any) -> str:
    """A namespace mode the engine applies, or one sharing a namespace,
    which the policy refuses under its rule."""
    if not isinstance(value, str):
        raise ExampleInvalid(f"{slug}: run.{key} must be a word.")
    spelled = value.strip().lower()
    applied = spelled in MODES_APPLIED.get(key, set())
    if spelled and not applied and not namespace_shared(value):
        raise ExampleInvalid(
            f"{slug}: run.{key} {value!r} is not supported: {MODES_REFUSED[key]}."
        )
    return value


def _security_options_read(slug: str, value: Any) -> list[str]:
    options = _strings_read(slug, "security_opt", value)
    for option in options:
        if not security_option_applied(option) and not security_option_unconfined(
            option
        ):
            raise ExampleInvalid(
                f"{slug}: run.security_opt {option!r} is not supported: only "
                "apparmor=docker-default and no-new-privileges are applied; "
                "other seccomp, AppArmor and SELinux profiles are not."
            )
    return options


def _ports_read(slug: str, value: Any) -> list[str]:
    """Extra published ports. Their shape is checked here; their address
    is the policy's (ports-all-interfaces)."""
    bindings = _strings_read(slug, "ports", value)
    for binding in bindings:
        try:
            port_binding_parse(binding)
        except ValueError as error:
            raise ExampleInvalid(
                f"{slug}: run.ports {binding!r} is not "
                f"[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTOCOL]: {error}."
            ) from None
    return bindings


def _strings_read(slug: str, key: str, value: Any) -> list[str]:
    if key == "ports" and isinstance(value, list):
        # Docker reads a bare port number as one published on every
        # interface, so it is judged as that.
        value = [str(item) if isinstance(item, int) else item for item in value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ExampleInvalid(f"{slug}: run.{key} must be a list of strings.")
    return value


def _volumes_read(slug: str, volumes: Any) -> list[str]:
    """Binds as ``SOURCE:TARGET``, from a list of those, a list of mounts
    (``type``, ``source``, ``target``) or docker-py's mapping of host paths."""
    if isinstance(volumes, dict):
        return [str(source) for source in volumes]
    if not isinstance(volumes, list):
        raise ExampleInvalid(f"{slug}: run.volumes must be a list.")
    binds = []
    for volume in volumes:
        if isinstance(volume, dict):
            binds.append(f"{volume.get('source', '')}:{volume.get('target', '')}")
        elif isinstance(volume, str):
            binds.append(volume)
        else:
            raise ExampleInvalid(f"{slug}: run.volumes must list binds or mounts.")
    return binds


def _environment_read(slug: str, environment: Any) -> dict[str, str]:
    """A mapping, or a list of ``NAME=value`` (Docker's other spelling,
    which a policy reading only mappings would wave through)."""
    if isinstance(environment, list) and all(
        isinstance(item, str) for item in environment
    ):
        pairs = [item.partition("=") for item in environment]
        variables = {name: value for name, _, value in pairs}
    elif isinstance(environment, dict):
        variables = {
            str(name): "" if value is None else str(value)
            for name, value in environment.items()
        }
    else:
        raise ExampleInvalid(
            f"{slug}: run.environment must map names to values or list NAME=value."
        )
    if any(not name.strip() for name in variables):
        raise ExampleInvalid(f"{slug}: run.environment has a variable without a name.")
    return variables


def examples_dir() -> Path:
    return Path(settings.DEPLOYMENTS_EXAMPLES_DIR)


def example_list() -> tuple[list[Example], list[tuple[str, str]]]:
    """The examples that load, and beside them each one that does not, with
    the reason: one broken manifest does not hide the others."""
    examples, invalid = [], []
    for folder in sorted(examples_dir().iterdir()):
        if (folder / "manifest.yaml").is_file():
            try:
                examples.append(example_load(folder.name))
            except ExampleInvalid as error:
                invalid.append((folder.name, str(error)))
    return examples, invalid


def example_exists(slug: str) -> bool:
    return (
        bool(SLUG.fullmatch(slug))
        and (examples_dir() / slug / "manifest.yaml").is_file()
    )


def example_load(slug: str) -> Example:
    if not SLUG.fullmatch(slug):
        raise ExampleInvalid(f"{slug!r} is not a lesson slug.")
    folder = examples_dir() / slug
    try:
        manifest = yaml.load(
            (folder / "manifest.yaml").read_text(), Loader=_ManifestLoader
        )
    except FileNotFoundError:
        raise ExampleInvalid(f"Lesson {slug!r} has no worked example.") from None
    except UnicodeDecodeError:
        raise ExampleInvalid(f"{slug}/manifest.yaml is not UTF-8 text.") from None
    except OSError as error:
        raise ExampleInvalid(
            f"{slug}/manifest.yaml cannot be read: {error.strerror}."
        ) from None
    except yaml.YAMLError as error:
        raise ExampleInvalid(f"{slug}/manifest.yaml is not YAML: {error}") from None
    if not isinstance(manifest, dict):
        raise ExampleInvalid(f"{slug}/manifest.yaml must be a mapping.")
    unknown = set(manifest) - KEYS
    if unknown:
        raise ExampleInvalid(
            f"{slug}/manifest.yaml: unknown keys {sorted(map(str, unknown))}."
        )
    if not (folder / "context" / "Dockerfile").is_file():
        raise ExampleInvalid(f"{slug} has no context/Dockerfile.")
    _context_links_check(slug, folder)
    return _example_read(slug, folder, manifest)


def _context_links_check(slug: str, folder: Path) -> None:
    """Refuse a symbolic link leading out of the build context: copying
    the context for the build would copy what it points to (a key or the
    registry's credentials, say) into the image."""
    context = folder / "context"
    inside = context.resolve()
    if context.is_symlink() or inside.parent != folder.resolve():
        raise ExampleInvalid(f"{slug}: context must be a folder, not a link.")
    for path in context.rglob("*"):
        if not path.is_symlink():
            continue
        target = path.resolve()
        if target != inside and inside not in target.parents:
            raise ExampleInvalid(
                f"{slug}: context/{path.relative_to(context)} is a symbolic link "
                "leading outside the build context."
            )


def _example_read(slug: str, folder: Path, manifest: dict[str, Any]) -> Example:
    port = manifest.get("port")
    # YAML's true is an int to Python.
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ExampleInvalid(f"{slug}: port must be a number from 1 to 65535.")
    paths = {}
    for key in ("health_path", "proof_path"):
        value = manifest.get(key, "")
        if value and (not isinstance(value, str) or not URL_PATH.fullmatch(value)):
            raise ExampleInvalid(
                f"{slug}: {key} must start with / and be at most 200 printable "
                "characters without spaces."
            )
        paths[key] = value or ""
    if not paths["health_path"]:
        raise ExampleInvalid(f"{slug}: health_path is required.")
    secrets = {}
    for key in ("build_secrets", "run_secrets"):
        names = manifest.get(key) or []
        if not isinstance(names, list) or not all(
            isinstance(name, str) and NAME.fullmatch(name) for name in names
        ):
            raise ExampleInvalid(
                f"{slug}: {key} must list names of lower-case letters, digits and _."
            )
        secrets[key] = tuple(names)
    resources = manifest.get("resources") or {}
    if not isinstance(resources, dict):
        raise ExampleInvalid(f"{slug}: resources must map memory, cpus and pids.")
    memory = str(resources.get("memory", "64m"))
    if not MEMORY.fullmatch(memory):
        raise ExampleInvalid(f"{slug}: resources.memory must look like 64m.")
    cpus, pids = resources.get("cpus", 0.5), resources.get("pids", 64)
    if (
        isinstance(cpus, bool)
        or not isinstance(cpus, int | float)
        or not 0.01 <= cpus <= 4
    ):
        raise ExampleInvalid(f"{slug}: resources.cpus must be from 0.01 to 4.")
    if not isinstance(pids, int) or not 8 <= pids <= 1024:
        raise ExampleInvalid(f"{slug}: resources.pids must be from 8 to 1024.")
    user = manifest.get("user", "65534:65534")
    if not isinstance(user, str):
        # YAML reads an unquoted 1000:0 as the number 60000.
        raise ExampleInvalid(
            f'{slug}: user must be written in quotes, as "UID:GID" (YAML reads '
            f"an unquoted one as a number; this one became {user!r})."
        )
    if not USER.fullmatch(user):
        raise ExampleInvalid(f"{slug}: user must be a numeric UID or UID:GID.")
    run = _run_read(slug, manifest.get("run") or {})
    return Example(
        slug=slug,
        title=str(manifest.get("title") or slug),
        folder=folder,
        port=port,
        health_path=paths["health_path"],
        proof_path=paths["proof_path"],
        build_secrets=secrets["build_secrets"],
        run_secrets=secrets["run_secrets"],
        memory=memory,
        cpus=float(cpus),
        pids=pids,
        user=user,
        run=run,
    )
