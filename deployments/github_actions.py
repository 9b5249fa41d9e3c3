"""A worked example as a GitHub Actions workflow: the same flow in hosted
CI without Docker-in-Docker. buildah builds with secret mounts on the
hosted runner, pushes to GHCR with the workflow's own token, and a
deploy job pulls and runs that digest, hardened, on a self-hosted runner
that holds the engine."""

import shlex

import yaml

from deployments.engine import security_option_parts
from deployments.examples import Example

# Hosted CI reaches Docker Hub; pin it by digest in your own copy.
CI_BASE_IMAGE = "docker.io/library/busybox:1.36.1"


def _secret_variable(name: str) -> str:
    return name.upper()


def _run_flags(example: Example) -> list[str]:
    """The manifest's own container options, as the site applies them:
    its environment, extra ports, network, IPC mode and security options.
    Those the site's policy refuses are refused there before anything
    runs, so no workflow of such an example gets this far in use."""
    run = example.run
    flags = [
        f"--env {shlex.quote(f'{name}={value}')}"
        for name, value in run.get("environment", {}).items()
    ]
    flags += [f"--publish {shlex.quote(port)}" for port in run.get("ports", [])]
    for key, flag in (("network_mode", "--network"), ("ipc_mode", "--ipc")):
        mode = str(run.get(key, "")).strip().lower()
        if mode:
            flags.append(f"{flag} {shlex.quote(mode)}")
    for option in run.get("security_opt", []):
        key, value = security_option_parts(option)
        if key != "no-new-privileges":
            flags.append(f"--security-opt {shlex.quote(f'{key}={value}')}")
    return flags


def workflow_export(example: Example) -> str:
    """The workflow as YAML text, for ``.github/workflows/``."""
    context = f"deployments/examples/{example.slug}/context"
    build_secret_env = {
        _secret_variable(name): f"${{{{ secrets.{_secret_variable(name)} }}}}"
        for name in example.build_secrets
    }
    build_lines = [
        "umask 077",
        'secrets_dir="$RUNNER_TEMP/build-secrets"',
        'mkdir -p "$secrets_dir"',
    ]
    secret_flags = []
    for name in example.build_secrets:
        build_lines.append(
            f'printf \'%s\' "${_secret_variable(name)}" > "$secrets_dir/{name}"'
        )
        secret_flags.append(f'--secret id={name},src="$secrets_dir/{name}"')
    build_lines.append(
        " ".join(
            [
                "buildah bud --format docker",
                *secret_flags,
                '--build-arg BASE_IMAGE="$BASE_IMAGE"',
                '-t "$IMAGE:$GITHUB_SHA"',
                context,
            ]
        )
    )
    build_lines.append('rm -rf "$secrets_dir"')

    run_secret_env = {
        _secret_variable(name): f"${{{{ secrets.{_secret_variable(name)} }}}}"
        for name in example.run_secrets
    }
    deploy_lines = [
        "set -euo pipefail",
        'secrets_dir="$RUNNER_TEMP/run-secrets"',
        'mkdir -p "$secrets_dir"',
    ]
    mounts = []
    for name in example.run_secrets:
        deploy_lines.append(
            f'printf \'%s\' "${_secret_variable(name)}" > "$secrets_dir/{name}"'
        )
        deploy_lines.append(f'chmod 0444 "$secrets_dir/{name}"')
        mounts.append(
            f'--mount type=bind,src="$secrets_dir/{name}",dst=/run/secrets/{name},readonly'
        )
    deploy_lines += [
        'printf \'%s\' "$REGISTRY_TOKEN" | docker login ghcr.io -u "$REGISTRY_USER" --password-stdin',
        'docker pull "$IMAGE@$DIGEST"',
        f"docker rm -f {example.slug} || true",
        " ".join(
            [
                f"docker run -d --name {example.slug}",
                "--read-only --cap-drop ALL --security-opt no-new-privileges:true",
                f"--user {example.user} --tmpfs /tmp:rw,noexec,nosuid,size=16m",
                f"--memory {example.memory} --cpus {example.cpus} --pids-limit {example.pids}",
                f"--publish 127.0.0.1::{example.port}",
                "--health-interval 1s --health-start-period 5s",
                *_run_flags(example),
                *mounts,
                '"$IMAGE@$DIGEST"',
            ]
        ),
        "for _ in $(seq 1 30); do",
        f"  status=$(docker inspect -f '{{{{.State.Health.Status}}}}' {example.slug})",
        '  [ "$status" = healthy ] && exit 0',
        "  sleep 1",
        "done",
        f"docker logs --tail 20 {example.slug}",
        "exit 1",
    ]
    workflow = {
        "name": f"Build and deploy {example.slug}",
        "on": {"workflow_dispatch": None, "push": {"branches": ["main"]}},
        "permissions": {"contents": "read"},
        "env": {
            "IMAGE": f"ghcr.io/${{{{ github.repository_owner }}}}/{example.slug}",
            "BASE_IMAGE": CI_BASE_IMAGE,
        },
        "jobs": {
            "build": {
                "runs-on": "ubuntu-24.04",
                "permissions": {"contents": "read", "packages": "write"},
                "outputs": {"digest": "${{ steps.push.outputs.digest }}"},
                "steps": [
                    {"uses": "actions/checkout@v5"},
                    {
                        "name": "Build without a daemon, secrets as mounts",
                        "env": build_secret_env,
                        "run": "\n".join(build_lines) + "\n",
                    },
                    {
                        "name": "Push to GHCR with the workflow token",
                        "id": "push",
                        "env": {"REGISTRY_TOKEN": "${{ secrets.GITHUB_TOKEN }}"},
                        "run": "\n".join(
                            [
                                'printf \'%s\' "$REGISTRY_TOKEN" | buildah login -u "$GITHUB_ACTOR" --password-stdin ghcr.io',
                                'buildah push --digestfile "$RUNNER_TEMP/digest" "$IMAGE:$GITHUB_SHA"',
                                'echo "digest=$(cat "$RUNNER_TEMP/digest")" >> "$GITHUB_OUTPUT"',
                            ]
                        )
                        + "\n",
                    },
                ],
            },
            "deploy": {
                "needs": "build",
                "runs-on": ["self-hosted", "linux"],
                "permissions": {"packages": "read"},
                "steps": [
                    {
                        "name": "Pull by digest and run hardened",
                        "env": {
                            "DIGEST": "${{ needs.build.outputs.digest }}",
                            "REGISTRY_USER": "${{ github.actor }}",
                            "REGISTRY_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
                            **run_secret_env,
                        },
                        "run": "\n".join(deploy_lines) + "\n",
                    }
                ],
            },
        },
    }
    header = (
        f"# Exported from Lessongraph: the worked example of {example.slug}.\n"
        "# Build with buildah (no Docker-in-Docker), push to GHCR with the\n"
        "# workflow token, deploy the pushed digest on a self-hosted runner.\n"
    )
    return header + yaml.dump(
        workflow, Dumper=_WorkflowDumper, sort_keys=False, width=1000
    )


class _WorkflowDumper(yaml.SafeDumper):
    """Scripts as literal blocks, as people write them in workflows."""


def _text_represent(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_WorkflowDumper.add_representer(str, _text_represent)
