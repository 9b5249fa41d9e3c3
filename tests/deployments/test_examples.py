"""A manifest's ``run`` options reach the policy in the shape it judges,
however the manifest spells them."""

from pathlib import Path

import pytest

from deployments.examples import ExampleInvalid, example_load
from deployments.policy import policy_check

REGISTRY = "127.0.0.1:5055"
IMAGE = f"{REGISTRY}/examples/service@sha256:" + "a" * 64
MANIFEST = "port: 8080\nhealth_path: /health\n"


@pytest.fixture
def examples(tmp_path: Path, settings) -> Path:
    settings.DEPLOYMENTS_EXAMPLES_DIR = tmp_path
    return tmp_path


def manifest_write(examples: Path, text: str) -> str:
    folder = examples / "service"
    (folder / "context").mkdir(parents=True, exist_ok=True)
    (folder / "context" / "Dockerfile").write_text("FROM scratch\n")
    (folder / "manifest.yaml").write_text(MANIFEST + text)
    return "service"


def refused_rules(examples: Path, text: str) -> list[str]:
    example = example_load(manifest_write(examples, text))
    spec = example.container_spec(image=IMAGE, name="service-r1")
    refusals = policy_check(spec, allowed_registries=[REGISTRY], require_digest=True)
    return [refusal.rule for refusal in refusals]


@pytest.mark.parametrize(
    "environment",
    [
        "['DOCKER_HOST=tcp://10.0.0.1:2375']",
        "['docker_host=tcp://10.0.0.1:2375']",
        "[DOCKER_HOST]",
        "{' DOCKER_HOST ': tcp://10.0.0.1:2375}",
        "{'DOCKER_HOST=tcp://10.0.0.1:2375': ''}",
    ],
)
def test_a_docker_host_variable_is_refused_however_the_environment_is_written(
    examples, environment
):
    rules = refused_rules(examples, f"run: {{environment: {environment}}}\n")

    assert rules == ["docker-host"]


def test_an_environment_given_as_a_list_reaches_the_container_as_variables(examples):
    example = example_load(manifest_write(examples, "run: {environment: [A=1, B]}\n"))

    spec = example.container_spec(image=IMAGE, name="service-r1")

    assert spec.environment == {"A": "1", "B": ""}


@pytest.mark.parametrize("user", ["nobody", "65534:nogroup", "-1", "1:2:3"])
def test_a_user_that_is_not_numbers_is_refused_when_the_manifest_is_read(
    examples, user
):
    slug = manifest_write(examples, f"user: '{user}'\n")

    with pytest.raises(ExampleInvalid, match="user must be"):
        example_load(slug)


@pytest.mark.parametrize("user", ["1000", "0"])
def test_a_user_yaml_reads_as_a_number_is_refused_when_the_manifest_is_read(
    examples, user
):
    # A UID without a group, which the engine would run in group 0.
    slug = manifest_write(examples, f"user: {user}\n")

    with pytest.raises(ExampleInvalid, match="user must be written in quotes"):
        example_load(slug)


def test_an_unquoted_user_and_group_is_read_as_written(examples):
    # YAML 1.1 would read 1000:0 as the base-60 number 60000.
    slug = manifest_write(examples, "user: 1000:1000\n")

    assert example_load(slug).user == "1000:1000"


def test_a_quoted_user_without_a_group_is_refused_by_the_policy(examples):
    assert refused_rules(examples, "user: '1000'\n") == ["root-user"]


@pytest.mark.parametrize(
    ("run", "rule"),
    [
        (
            "{volumes: [{type: bind, source: /var/run/docker.sock, target: /s}]}",
            "docker-socket",
        ),
        ("{volumes: {/run: {bind: /host-run, mode: rw}}}", "docker-socket"),
        ("{volumes: [{type: bind, source: /etc, target: /etc}]}", "host-bind-mount"),
        ("{ports: [8080]}", "ports-all-interfaces"),
    ],
)
def test_options_in_docker_s_other_spellings_are_judged_by_their_rule(
    examples, run, rule
):
    assert refused_rules(examples, f"run: {run}\n") == [rule]


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ("port: true\nhealth_path: /health\n", "port must be a number"),
        (MANIFEST + "resources: {cpus: true}\n", "resources.cpus must be"),
        ("port: 8080\nhealth_path: '/health\\nX-Extra: 1'\n", "health_path must"),
        ("port: 8080\nhealth_path: '/ health'\n", "health_path must start with /"),
        (f"port: 8080\nhealth_path: '/{'h' * 200}'\n", "at most 200"),
        (MANIFEST + "proof_path: proof\n", "proof_path must start with /"),
    ],
)
def test_settings_of_the_wrong_shape_are_refused_when_the_manifest_is_read(
    examples, manifest, words
):
    slug = manifest_write(examples, "")
    (examples / slug / "manifest.yaml").write_text(manifest)

    with pytest.raises(ExampleInvalid, match=words):
        example_load(slug)


@pytest.mark.parametrize(
    ("run", "words"),
    [
        ("{network_mode: 5}", "run.network_mode must be"),
        ("{cap_add: SYS_ADMIN}", "run.cap_add must be"),
        ("{privileged: 'yes'}", "run.privileged must be"),
        ("{security_opt: [{seccomp: unconfined}]}", "run.security_opt must be"),
        ("{volumes: 7}", "run.volumes must be"),
    ],
)
def test_options_of_the_wrong_shape_are_refused_when_the_manifest_is_read(
    examples, run, words
):
    slug = manifest_write(examples, f"run: {run}\n")

    with pytest.raises(ExampleInvalid, match=words):
        example_load(slug)


@pytest.mark.parametrize(
    ("run", "words"),
    [
        ("{network_mode: none}", "run.network_mode 'none' is not supported"),
        ("{network_mode: my-network}", "run.network_mode 'my-network' is not"),
        ("{ipc_mode: shareable}", "run.ipc_mode 'shareable' is not supported"),
        ("{pid_mode: private}", "run.pid_mode 'private' is not supported"),
        ("{uts_mode: private}", "run.uts_mode 'private' is not supported"),
        (
            "{security_opt: ['seccomp=/etc/profile.json']}",
            "run.security_opt 'seccomp=/etc/profile.json' is not supported",
        ),
        (
            "{security_opt: ['label=type:unconfined_t']}",
            "run.security_opt 'label=type:unconfined_t' is not supported",
        ),
        (
            "{ports: ['127.0.0.1:9000-9001:8080']}",
            "run.ports '127.0.0.1:9000-9001:8080' is not",
        ),
        ("{ports: ['127.0.0.1:9000:8080/http']}", "run.ports .* is not"),
        ("{environment: ['=x']}", "run.environment has a variable without a name"),
    ],
)
def test_options_the_engine_would_not_apply_are_refused_when_the_manifest_is_read(
    examples, run, words
):
    slug = manifest_write(examples, f"run: {run}\n")

    with pytest.raises(ExampleInvalid, match=words):
        example_load(slug)


def test_options_that_pass_the_policy_are_kept_for_the_container(examples):
    slug = manifest_write(
        examples,
        "run: {network_mode: bridge, ipc_mode: private, "
        "security_opt: [apparmor=docker-default], "
        "ports: ['127.0.0.1:9000:8080', '[::1]::8081/udp'], environment: {A: '1'}}\n",
    )

    spec = example_load(slug).container_spec(image=IMAGE, name="service-r1")

    assert policy_check(spec, allowed_registries=[REGISTRY], require_digest=True) == []
    assert (spec.network_mode, spec.ipc_mode) == ("bridge", "private")
    assert spec.security_opt == ["apparmor=docker-default"]
    assert spec.port_bindings == ["127.0.0.1:9000:8080", "[::1]::8081/udp"]
    assert spec.environment == {"A": "1"}


@pytest.mark.parametrize(
    ("run", "rule"),
    [
        ("{network_mode: host}", "host-namespace"),
        ("{ipc_mode: 'container:db'}", "host-namespace"),
        ("{security_opt: ['apparmor=unconfined']}", "security-profile"),
    ],
)
def test_options_the_policy_refuses_still_reach_it_and_name_its_rule(
    examples, run, rule
):
    assert refused_rules(examples, f"run: {run}\n") == [rule]


@pytest.mark.parametrize(
    "target", ["/etc/hostname", "../../manifest.yaml", "../..", "/nonexistent"]
)
def test_a_link_leading_out_of_the_build_context_makes_the_example_invalid(
    examples, target
):
    slug = manifest_write(examples, "")
    (examples / slug / "context" / "www").mkdir()
    (examples / slug / "context" / "www" / "leak").symlink_to(target)

    with pytest.raises(ExampleInvalid, match="www/leak is a symbolic link leading"):
        example_load(slug)


def test_a_link_within_the_build_context_is_kept(examples):
    slug = manifest_write(examples, "")
    (examples / slug / "context" / "index").symlink_to("Dockerfile")

    assert example_load(slug).slug == slug


def test_a_build_context_that_is_a_link_makes_the_example_invalid(examples, tmp_path):
    slug = manifest_write(examples, "")
    elsewhere = tmp_path / "elsewhere"
    (examples / slug / "context").rename(elsewhere)
    (examples / slug / "context").symlink_to(elsewhere)

    with pytest.raises(ExampleInvalid, match="context must be a folder"):
        example_load(slug)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("resources: [64m]\n", "resources must map memory, cpus and pids"),
        ("resources: 64m\n", "resources must map memory, cpus and pids"),
        ("1: one\nnope: two\n", r"unknown keys \['1', 'nope'\]"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_invalid_naming_what_is_wrong(
    examples, text, words
):
    slug = manifest_write(examples, text)

    with pytest.raises(ExampleInvalid, match=words):
        example_load(slug)


def test_a_manifest_that_is_not_utf8_is_invalid(examples):
    slug = manifest_write(examples, "")
    (examples / slug / "manifest.yaml").write_bytes(b"title: caf\xe9\n" + b"port: 80\n")

    with pytest.raises(ExampleInvalid, match="is not UTF-8 text"):
        example_load(slug)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('user: "65534:65534\\n"\n', "user must be a numeric UID or UID:GID"),
        ('resources: {memory: "64m\\n"}\n', "resources.memory must look like 64m"),
        ('run_secrets: ["api_key\\n"]\n', "run_secrets must list names"),
    ],
)
def test_a_value_ending_in_a_line_break_is_invalid(examples, text, words):
    slug = manifest_write(examples, text)

    with pytest.raises(ExampleInvalid, match=words):
        example_load(slug)


@pytest.mark.parametrize(
    "text",
    [
        'user: "65534:65534"\nuser: "1000:1000"\n',
        "run: {privileged: false, privileged: true}\n",
    ],
)
def test_a_key_written_twice_makes_the_manifest_invalid(examples, text):
    slug = manifest_write(examples, text)

    with pytest.raises(ExampleInvalid, match="appears twice"):
        example_load(slug)


def test_a_mapping_used_as_a_key_makes_the_manifest_invalid(examples):
    slug = manifest_write(examples, "run: {[a]: b}\n")

    with pytest.raises(ExampleInvalid, match="is not YAML"):
        example_load(slug)


def test_a_merged_mapping_may_be_overridden(examples):
    slug = manifest_write(
        examples,
        "resources: {<<: {memory: 32m, pids: 16}, pids: 32}\n",
    )

    example = example_load(slug)

    assert (example.memory, example.pids) == ("32m", 32)


def test_an_unquoted_port_binding_is_judged_as_written_not_as_a_base_60_number(
    examples,
):
    # YAML 1.1 would read 80:80 as 4880.
    slug = manifest_write(examples, "run: {ports: [80:80], environment: {N: 1:30}}\n")

    spec = example_load(slug).container_spec(image=IMAGE, name="service-r1")

    assert spec.port_bindings == ["80:80"]
    assert spec.environment == {"N": "1:30"}
    assert refused_rules(examples, "run: {ports: [80:80]}\n") == [
        "ports-all-interfaces"
    ]


def test_the_source_hash_follows_every_file_s_name_and_content(examples):
    slug = manifest_write(examples, "")
    context = examples / slug / "context"
    (context / "big.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB, in pieces
    first = example_load(slug).source_hash()

    assert example_load(slug).source_hash() == first
    (context / "big.bin").write_bytes(bytes(range(256)) * 8192 + b"!")
    changed = example_load(slug).source_hash()
    (context / "big.bin").rename(context / "other.bin")
    renamed = example_load(slug).source_hash()

    assert len({first, changed, renamed}) == 3
