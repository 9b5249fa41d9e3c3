"""Images deployed by reference and name, on the real engine and registry:
they keep their port and health path through a roll back, and one that
never answers keeps the old container serving."""

import secrets
from http import HTTPStatus

import requests

from deployments import registry, services
from deployments.models import Deployment, Run
from deployments.signing import provenance_sign
from tests.deployments.conftest import example_write
from tests.deployments.runs import (
    action_run,
    example_run,
    registry_elsewhere,
    run_wait,
    site_password_in,
)

PORT = 9090
DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY www /www
USER 65534:65534
CMD ["httpd", "-f", "-p", "{PORT}", "-h", "/www"]
"""
MANIFEST = f"port: {PORT}\nhealth_path: /health\n"


def images_built(instructor, examples, count: int) -> list[str]:
    """References, by tag, of images of one repository the site signed."""
    slug = example_write(examples, "port-9090", DOCKERFILE, MANIFEST)
    references = []
    for number in range(count):
        (examples / slug / "context" / "www" / "index.html").write_text(f"{number}\n")
        built = example_run(instructor, slug)
        assert built.status == Run.Status.SUCCEEDED, built.error
        repository = Deployment.objects.get(name=slug).repository
        references.append(f"{repository}:run-{built.pk}")
    return references


def image_deploy(instructor, image: str, *, port: int = PORT) -> Run:
    return run_wait(
        services.image_deploy_start(
            account=instructor,
            image=image,
            name="copy",
            target="local",
            port=port,
            health_path="/health",
        )
    )


def test_rolling_back_an_image_deployment_keeps_its_port_and_health_path(
    worker, instructor, examples
):
    first, second = images_built(instructor, examples, 2)
    earlier = image_deploy(instructor, first)
    image_deploy(instructor, second)

    rollback = action_run(
        instructor, Deployment.objects.get(name="copy"), Run.Kind.ROLLBACK
    )

    assert rollback.status == Run.Status.SUCCEEDED, rollback.error
    deployment = Deployment.objects.get(name="copy")
    assert deployment.digest == earlier.digest
    assert (deployment.port, deployment.health_path) == (PORT, "/health")
    assert requests.get(deployment.url + "health", timeout=5).status_code == 200


def test_an_image_that_never_answers_keeps_the_old_container_serving(
    worker, instructor, examples, settings
):
    settings.DEPLOYMENTS_HEALTH_TIMEOUT_SECONDS = 3
    (image,) = images_built(instructor, examples, 1)
    serving = image_deploy(instructor, image)
    assert serving.status == Run.Status.SUCCEEDED, serving.error
    before = Deployment.objects.get(name="copy")

    wrong = image_deploy(instructor, image, port=PORT + 1)

    assert wrong.status == Run.Status.FAILED
    assert "never became healthy" in wrong.error
    after = Deployment.objects.get(name="copy")
    assert after.container_name == before.container_name
    assert requests.get(before.url + "health", timeout=5).status_code == HTTPStatus.OK


def test_a_rollback_finds_an_earlier_image_of_another_repository(
    worker, instructor, examples
):
    (first,) = images_built(instructor, examples, 1)
    other = example_write(examples, "other-repository", DOCKERFILE, MANIFEST)
    built = example_run(instructor, other)
    assert built.status == Run.Status.SUCCEEDED, built.error
    second = f"{Deployment.objects.get(name=other).repository}:run-{built.pk}"
    earlier = image_deploy(instructor, first)
    image_deploy(instructor, second)

    rollback = action_run(
        instructor, Deployment.objects.get(name="copy"), Run.Kind.ROLLBACK
    )

    assert rollback.status == Run.Status.SUCCEEDED, rollback.error
    deployment = Deployment.objects.get(name="copy")
    assert f"{deployment.repository}:run-" in first
    assert deployment.digest == earlier.digest
    assert deployment.previous_digest == built.digest
    assert f"{deployment.previous_repository}:run-{built.pk}" == second


def test_a_pull_from_another_allowed_registry_is_not_sent_the_site_s_credentials(
    worker, instructor, settings
):
    with registry_elsewhere() as (address, sent):
        settings.DEPLOYMENTS_ALLOWED_REGISTRIES = [
            settings.DEPLOYMENTS_REGISTRY,
            address,
        ]
        # Signed by the site, as every image it built is.
        digest = "sha256:" + secrets.token_hex(32)
        registry.signature_store(
            "examples/elsewhere",
            digest,
            provenance_sign({"digest": digest, "builder": "buildah", "run": 0}),
        )

        run = image_deploy(instructor, f"{address}/examples/elsewhere@{digest}")

    assert run.status == Run.Status.FAILED
    assert "pull" in run.error
    assert sent
    assert not site_password_in(sent)
