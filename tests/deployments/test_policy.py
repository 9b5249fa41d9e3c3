"""Every policy rule refuses before any container starts, and says which
rule it is."""

import pytest

from deployments.engine import ContainerSpec
from deployments.policy import policy_check

REGISTRY = "127.0.0.1:5055"
DIGEST = "sha256:" + "a" * 64
IMAGE = f"{REGISTRY}/examples/service@{DIGEST}"


def refused_rules(**changes) -> list[str]:
    spec = ContainerSpec(image=IMAGE, name="service-r1", port=8080)
    for name, value in changes.items():
        setattr(spec, name, value)
    refusals = policy_check(spec, allowed_registries=[REGISTRY], require_digest=True)
    return [refusal.rule for refusal in refusals]


def test_a_hardened_container_from_an_allowed_registry_by_digest_passes():
    assert refused_rules() == []


@pytest.mark.parametrize(
    "source",
    ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/", "/var",
     "/var/run/", "//run", "/srv/../var/run/docker.sock"],
)  # fmt: skip
def test_rule_docker_socket_refuses_the_socket_and_every_folder_above_it(source):
    assert refused_rules(binds=[f"{source}:/mnt"]) == ["docker-socket"]


def test_rule_docker_socket_refuses_a_symbolic_link_to_the_socket_folder(tmp_path):
    (tmp_path / "innocent").symlink_to("/run")

    assert refused_rules(binds=[f"{tmp_path}/innocent:/mnt"]) == ["docker-socket"]


def test_rule_host_bind_mount_refuses_other_host_folders():
    assert refused_rules(binds=["/etc:/host-etc:ro"]) == ["host-bind-mount"]


def test_rule_privileged_refuses_privileged_mode():
    assert refused_rules(privileged=True) == ["privileged"]


@pytest.mark.parametrize("capability", ["SYS_ADMIN", "NET_ADMIN", "ALL"])
def test_rule_capabilities_refuses_added_capabilities(capability):
    assert refused_rules(cap_add=[capability]) == ["capabilities"]


@pytest.mark.parametrize("namespace", ["network", "pid", "ipc", "uts"])
def test_rule_host_namespace_refuses_sharing_the_hosts_namespaces(namespace):
    assert refused_rules(**{f"{namespace}_mode": "host"}) == ["host-namespace"]


@pytest.mark.parametrize(
    "mode", ["HOST", " host", "host ", "container:db", "Container:db"]
)
def test_rule_host_namespace_refuses_any_spelling_of_host_or_container(mode):
    assert refused_rules(network_mode=mode, pid_mode=mode) == ["host-namespace"] * 2


def test_rule_devices_refuses_devices():
    assert refused_rules(devices=["/dev/kvm:/dev/kvm"]) == ["devices"]


@pytest.mark.parametrize(
    "option",
    [
        "seccomp=unconfined",
        "apparmor=unconfined",
        "label=disable",
        "seccomp:unconfined",
        'seccomp="unconfined"',
        "SECCOMP = Unconfined",
        "apparmor:unconfined",
        "label:disable",
        "label=type:spc_t",
        "label:type:spc_t",
        "systempaths=unconfined",
        "unmask=ALL",
        "no-new-privileges=false",
        "no-new-privileges:false",
    ],
)
def test_rule_security_profile_refuses_disabled_profiles(option):
    assert refused_rules(security_opt=[option]) == ["security-profile"]


@pytest.mark.parametrize("name", ["DOCKER_HOST", "docker_host"])
def test_rule_docker_host_refuses_a_docker_host_variable(name):
    assert refused_rules(environment={name: "tcp://10.0.0.1:2375"}) == ["docker-host"]


def test_rule_docker_host_refuses_a_name_that_carries_its_own_value():
    # The engine is given "DOCKER_HOST=tcp://10.0.0.1:2375=" and sets
    # DOCKER_HOST.
    environment = {"DOCKER_HOST=tcp://10.0.0.1:2375": ""}

    assert refused_rules(environment=environment) == ["docker-host"]


@pytest.mark.parametrize("binding", ["8080:8080", "0.0.0.0:8080:8080", ":::8080:8080"])
def test_rule_ports_all_interfaces_refuses_ports_beyond_loopback(binding):
    assert refused_rules(port_bindings=[binding]) == ["ports-all-interfaces"]


def test_ports_on_loopback_pass():
    assert refused_rules(port_bindings=["127.0.0.1:9000:8080"]) == []


@pytest.mark.parametrize(
    "image",
    [
        f"docker.io/library/nginx@{DIGEST}",
        f"nginx@{DIGEST}",
        f"127.0.0.1:5000/x@{DIGEST}",
    ],
)
def test_rule_registry_not_allowed_refuses_other_registries(image):
    assert refused_rules(image=image) == ["registry-not-allowed"]


def test_rule_tag_not_digest_refuses_a_tag_at_deploy_time():
    assert refused_rules(image=f"{REGISTRY}/examples/service:latest") == [
        "tag-not-digest"
    ]


def test_an_unreadable_image_reference_is_refused():
    assert refused_rules(image="Not An Image") == ["image-reference"]


@pytest.mark.parametrize("user", ["0", "00", "0:0", "root", "root:root", "65534:0", ""])
def test_rule_root_user_refuses_a_container_running_as_root(user):
    assert refused_rules(user=user) == ["root-user"]


@pytest.mark.parametrize(
    "user",
    ["1000", "60000", "1000:", "nobody", "65534:nogroup", "1000:\u0660", "1\n:1"],
)
def test_rule_root_user_refuses_a_user_that_leaves_the_group_to_the_image(user):
    # The engine runs a UID the image does not know in group 0.
    spec = ContainerSpec(image=IMAGE, name="service-r1", port=8080, user=user)

    refusals = policy_check(spec, allowed_registries=[REGISTRY], require_digest=True)

    assert [refusal.rule for refusal in refusals] == ["root-user"]
    assert "a UID without a GID runs in group 0" in refusals[0].message


def test_rule_root_user_passes_a_numeric_non_root_user_and_group():
    assert refused_rules(user="1000:1000") == []


def test_every_broken_rule_is_named_at_once():
    rules = refused_rules(privileged=True, cap_add=["SYS_ADMIN"], network_mode="host")

    assert rules == ["privileged", "capabilities", "host-namespace"]


@pytest.mark.parametrize(
    "binding", ["127.0.0.1:5055:8080", "::1:5055:8080", "127.0.0.1:5055:8080/udp"]
)
def test_rule_site_port_refuses_the_port_of_the_site_s_registry(binding):
    # Down for a moment, the registry's port would be the container's, and
    # the next push would send it the registry's password.
    spec = ContainerSpec(
        image=IMAGE, name="service-r1", port=8080, port_bindings=[binding]
    )

    refusals = policy_check(
        spec, allowed_registries=[REGISTRY], require_digest=True, site_ports={5055}
    )

    assert [refusal.rule for refusal in refusals] == ["site-port"]


def test_other_fixed_ports_on_loopback_pass_beside_the_site_s():
    spec = ContainerSpec(
        image=IMAGE,
        name="service-r1",
        port=8080,
        port_bindings=["127.0.0.1:9000:8080", "127.0.0.1::5055"],
    )

    refusals = policy_check(
        spec, allowed_registries=[REGISTRY], require_digest=True, site_ports={5055}
    )

    assert refusals == []
