"""The deployments API: who may start what, bad input, and no secret in
any answer."""

import time
from http import HTTPStatus

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.reauth import SESSION_KEY
from deployments import services
from deployments.models import Deployment, Run
from tests.deployments.runs import FLAGSHIP, example_run, flagship_recorded, run_wait


def signed_in(client: Client, account: User, *, fresh: bool = True) -> Client:
    client.force_login(account)
    if fresh:
        session = client.session
        session[SESSION_KEY] = time.time()
        session.save()
    return client


def post(client: Client, url: str, body: dict) -> object:
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def learner(db) -> User:
    return User.objects.create(username="Lin")


def test_starting_a_run_needs_a_fresh_passkey_assertion(client, instructor):
    signed_in(client, instructor, fresh=False)

    answer = post(client, f"/api/deployments/examples/{FLAGSHIP}/runs", {})

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert "fresh passkey assertion" in answer.json()["detail"]
    assert not Run.objects.exists()


def test_a_learner_cannot_start_a_run(client, learner):
    signed_in(client, learner)

    answer = post(client, "/api/deployments/", {"image": "x", "name": "x"})

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert answer.json()["detail"].startswith("Only instructors run deployments;")
    assert "set_role NAME instructor" in answer.json()["detail"]


def test_signed_out_programs_get_401_or_403(client, db):
    answer = client.get("/api/deployments/runs/")

    assert answer.status_code in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "web"}, "image", "required"),
        ({"image": "127.0.0.1:5055/x:1"}, "name", "required"),
        ({"image": "127.0.0.1:5055/x:1", "name": "Web Server"}, "name", "lower-case"),
        ({"image": "127.0.0.1:5055/x:1", "name": "web", "target": "mars"}, "target", "no target"),
        ({"image": "127.0.0.1:5055/x:1", "name": "web", "port": 0}, "port", "greater than"),
        ({"image": "127.0.0.1:5055/x:1", "name": "web", "health_path": "x"}, "health_path", "starting with /"),
    ],
)  # fmt: skip
def test_bad_image_deployments_are_refused_with_the_field_named(
    client, instructor, body, field, words
):
    signed_in(client, instructor)

    answer = post(client, "/api/deployments/", body)

    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert words in " ".join(answer.json()[field])
    assert not Run.objects.exists()


def test_an_unreadable_image_reference_is_refused(client, instructor, deployments_home):
    signed_in(client, instructor)

    answer = post(client, "/api/deployments/", {"image": "Not An Image", "name": "web"})

    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert answer.json()["detail"].startswith("image: ")


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("docker.io/library/busybox:latest", "registry-not-allowed: docker.io"),
        ("busybox@sha256:" + "a" * 64, "registry-not-allowed: docker.io"),
        ("localhost:5000/examples/web:1", "registry-not-allowed: localhost:5000"),
    ],
)
def test_an_image_outside_the_allowed_registries_is_refused_before_any_run(
    client, instructor, deployments_home, image, words
):
    signed_in(client, instructor)

    answer = post(client, "/api/deployments/", {"image": image, "name": "web"})

    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert answer.json()["detail"].startswith(f"image: {words}")
    assert not Run.objects.exists()


def test_logs_of_a_deployment_whose_engine_is_down_answer_503_saying_so(
    client, instructor, worker, settings
):
    settings.DEPLOYMENTS_TARGETS = {"local": "", "away": "ssh://nobody@127.0.0.1:1"}
    deployment = Deployment.objects.create(
        name="web", target="away", repository="r", container_name="web-r1",
        owner=instructor,
    )  # fmt: skip
    signed_in(client, instructor)

    answer = client.get(f"/api/deployments/{deployment.pk}/logs")

    assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "target 'away' does not answer" in answer.json()["detail"]


def test_logs_of_a_deployment_whose_container_is_gone_say_so(
    client, instructor, worker
):
    deployment = Deployment.objects.create(
        name="web", repository="r", container_name="lgtest-gone-web-r1",
        owner=instructor,
    )  # fmt: skip
    signed_in(client, instructor)

    answer = client.get(f"/api/deployments/{deployment.pk}/logs")

    assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "lgtest-gone-web-r1 is not on local any more" in answer.json()["detail"]


def test_logs_of_a_torn_down_deployment_say_it_is_torn_down(client, instructor):
    deployment = flagship_recorded(instructor)
    deployment.status = Deployment.Status.TORN_DOWN
    deployment.save()
    signed_in(client, instructor)

    answer = client.get(f"/api/deployments/{deployment.pk}/logs")

    assert answer.status_code == HTTPStatus.CONFLICT
    assert "is torn down: no service runs" in answer.json()["detail"]


def test_an_unknown_example_answers_404(client, instructor, deployments_home):
    signed_in(client, instructor)

    answer = post(client, "/api/deployments/examples/no-such-lesson/runs", {})

    assert answer.status_code == HTTPStatus.NOT_FOUND
    assert "no worked example" in answer.json()["detail"]


def test_a_second_start_is_refused_with_the_active_run(
    client, instructor, deployments_home
):
    signed_in(client, instructor)
    first = post(client, f"/api/deployments/examples/{FLAGSHIP}/runs", {})

    second = post(client, f"/api/deployments/examples/{FLAGSHIP}/runs", {})

    assert first.status_code == HTTPStatus.ACCEPTED
    assert second.status_code == HTTPStatus.CONFLICT
    assert second.json()["active_run"] == first.json()["id"]


def test_service_logs_mask_the_value_the_container_holds_after_it_was_changed(
    client, instructor, worker
):
    run = example_run(instructor)
    assert run.status == Run.Status.SUCCEEDED, run.error
    deployment = Deployment.objects.get()
    held = services.secret_values(example=FLAGSHIP)["api_key"]
    services.secret_set(example=FLAGSHIP, name="api_key", value="a-value-set-later")
    # The service logs each request's path, so this one's shows the value.
    requests.get(f"{deployment.url}held/{held}", timeout=5)
    signed_in(client, instructor)

    answer = client.get(f"/api/deployments/{deployment.pk}/logs")

    assert answer.status_code == HTTPStatus.OK
    assert "url:/held/" in answer.json()["logs"]
    assert held not in answer.json()["logs"]


def test_an_example_run_through_the_api_reveals_no_secret(client, instructor, worker):
    signed_in(client, instructor)

    started = post(client, f"/api/deployments/examples/{FLAGSHIP}/runs", {})
    run = run_wait(Run.objects.get(pk=started.json()["id"]))
    answers = [
        client.get(f"/api/deployments/runs/{run.pk}/"),
        client.get("/api/deployments/runs/"),
        client.get("/api/deployments/"),
        client.get(f"/api/deployments/{Deployment.objects.get().pk}/logs"),
        client.get(f"/deployments/runs/{run.pk}/"),
    ]

    assert run.status == Run.Status.SUCCEEDED, run.error
    body = answers[0].json()
    assert [step["status"] for step in body["steps"]] == ["succeeded"] * 7
    assert body["deployment"]["url"].startswith("http://127.0.0.1:")
    for value in services.secret_values(example=FLAGSHIP).values():
        for answer in answers:
            assert answer.status_code == HTTPStatus.OK
            assert value not in answer.content.decode()


def test_an_image_is_deployed_by_reference_and_name(client, instructor, worker):
    built = run_wait(
        services.run_start(
            account=instructor,
            kind=Run.Kind.EXAMPLE,
            subject=FLAGSHIP,
            example=FLAGSHIP,
        )
    )
    assert built.status == Run.Status.SUCCEEDED, built.error
    repository = Deployment.objects.get(name=FLAGSHIP).repository
    signed_in(client, instructor)

    started = post(
        client,
        "/api/deployments/",
        {
            "image": f"{repository}:run-{built.pk}",
            "name": "copy",
            "health_path": "/health",
        },
    )
    run = run_wait(Run.objects.get(pk=started.json()["id"]))

    assert started.status_code == HTTPStatus.ACCEPTED
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.digest == built.digest
    assert Deployment.objects.get(name="copy").digest == built.digest


def test_an_instructor_sets_a_secret_and_the_answer_holds_no_value(client, instructor):
    signed_in(client, instructor)

    answer = client.put(
        f"/api/deployments/examples/{FLAGSHIP}/secrets/api_key",
        {"value": "my-own-run-secret"},
        content_type="application/json",
    )

    assert answer.status_code == HTTPStatus.NO_CONTENT
    assert answer.content == b""
    assert services.secret_values(example=FLAGSHIP)["api_key"] == "my-own-run-secret"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (f"{FLAGSHIP}/secrets/api_key", {"value": "short"}, HTTPStatus.BAD_REQUEST),
        (
            f"{FLAGSHIP}/secrets/password",
            {"value": "long-enough-value"},
            HTTPStatus.BAD_REQUEST,
        ),
        (
            "no-such-lesson/secrets/api_key",
            {"value": "long-enough-value"},
            HTTPStatus.NOT_FOUND,
        ),
    ],
)
def test_bad_secrets_are_refused(client, instructor, path, body, status):
    signed_in(client, instructor)

    answer = client.put(
        f"/api/deployments/examples/{path}", body, content_type="application/json"
    )

    assert answer.status_code == status
    assert services.secret_values(example=FLAGSHIP) == {}


def secret_put(client: Client, name: str, value: str) -> object:
    return client.put(
        f"/api/deployments/examples/{FLAGSHIP}/secrets/{name}",
        {"value": value},
        content_type="application/json",
    )


@pytest.fixture
def flagship_of_grace(instructor) -> Deployment:
    services.secret_set(example=FLAGSHIP, name="api_key", value="grace-chose-this")
    return flagship_recorded(instructor)


def test_another_instructor_cannot_set_the_secrets_of_an_example_someone_runs(
    client, colleague, flagship_of_grace
):
    signed_in(client, colleague)

    answer = secret_put(client, "api_key", "ada-knows-this-one")

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert answer.json()["detail"] == (
        f"{FLAGSHIP} on local belongs to Grace; only they or staff may set its "
        "example's secrets."
    )
    assert services.secret_values(example=FLAGSHIP)["api_key"] == "grace-chose-this"


def test_secrets_stay_the_owner_s_while_an_image_serves_under_the_example_s_name(
    client, colleague, flagship_of_grace
):
    # Grace deployed an image by reference under the example's name.
    flagship_of_grace.example = ""
    flagship_of_grace.save()
    signed_in(client, colleague)

    answer = secret_put(client, "api_key", "ada-knows-this-one")

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert services.secret_values(example=FLAGSHIP)["api_key"] == "grace-chose-this"


def test_the_owner_and_staff_may_set_the_secrets_of_an_example_they_run(
    client, instructor, flagship_of_grace
):
    staff = User.objects.create(username="Sam", role=User.Role.STAFF)

    by_owner = secret_put(signed_in(client, instructor), "api_key", "grace-again-1")
    by_staff = secret_put(signed_in(Client(), staff), "build_token", "staff-set-it")

    assert by_owner.status_code == HTTPStatus.NO_CONTENT
    assert by_staff.status_code == HTTPStatus.NO_CONTENT
    assert services.secret_values(example=FLAGSHIP) == {
        "api_key": "grace-again-1",
        "build_token": "staff-set-it",
    }


def test_a_secret_waits_for_another_instructor_s_active_run_of_the_example(
    client, instructor, colleague
):
    queued = Run.objects.create(
        kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP, started_by=colleague
    )
    signed_in(client, instructor)

    answer = secret_put(client, "api_key", "grace-chose-this")

    assert answer.status_code == HTTPStatus.CONFLICT
    assert answer.json()["active_run"] == queued.pk
    assert f"started by {colleague.username}, is active" in answer.json()["detail"]
    assert services.secret_values(example=FLAGSHIP) == {}


@pytest.fixture
def others_deployment(instructor) -> Deployment:
    return Deployment.objects.create(
        name="web",
        repository="127.0.0.1:5055/examples/web",
        digest="sha256:" + "b" * 64,
        previous_digest="sha256:" + "a" * 64,
        container_name="web-r1",
        owner=instructor,
    )


@pytest.fixture
def colleague(db) -> User:
    return User.objects.create(username="Ada", role=User.Role.INSTRUCTOR)


@pytest.mark.parametrize(
    ("action", "doing"),
    [("rollback", "roll it back"), ("teardown", "tear it down")],
)
def test_another_instructor_cannot_act_on_a_deployment(
    client, colleague, others_deployment, deployments_home, action, doing
):
    signed_in(client, colleague)

    answer = post(client, f"/api/deployments/{others_deployment.pk}/{action}", {})

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert answer.json()["detail"] == (
        f"web on local belongs to Grace; only they or staff may {doing}."
    )
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("action", "doing"),
    [("rollback", "roll it back"), ("teardown", "tear it down")],
)
def test_another_instructor_is_refused_before_learning_a_deployment_s_state(
    client, colleague, others_deployment, deployments_home, action, doing
):
    # Nothing to roll back to, and already torn down: the owner would get
    # 409 for either; anyone else is told only whose it is.
    others_deployment.previous_digest = ""
    others_deployment.status = Deployment.Status.TORN_DOWN
    others_deployment.save()
    signed_in(client, colleague)

    answer = post(client, f"/api/deployments/{others_deployment.pk}/{action}", {})

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert answer.json()["detail"] == (
        f"web on local belongs to Grace; only they or staff may {doing}."
    )


def test_another_instructor_cannot_read_a_deployment_s_logs(
    client, colleague, others_deployment
):
    signed_in(client, colleague)

    answer = client.get(f"/api/deployments/{others_deployment.pk}/logs")

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert "belongs to Grace" in answer.json()["detail"]


def test_another_instructor_cannot_deploy_under_a_deployment_s_name(
    client, colleague, others_deployment, settings, deployments_home
):
    signed_in(client, colleague)
    image = f"{settings.DEPLOYMENTS_REGISTRY}/examples/mine:1"

    answer = post(client, "/api/deployments/", {"image": image, "name": "web"})

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert answer.json()["detail"] == (
        "web on local belongs to Grace; only they or staff may deploy under its name."
    )
    assert not Run.objects.exists()


def test_staff_may_act_on_any_deployment(client, others_deployment, deployments_home):
    staff = User.objects.create(username="Sam", role=User.Role.STAFF)
    signed_in(client, staff)

    answer = post(client, f"/api/deployments/{others_deployment.pk}/rollback", {})

    assert answer.status_code == HTTPStatus.ACCEPTED
    assert Run.objects.get().started_by == staff


def test_a_deployment_belongs_to_who_first_deployed_it(client, instructor, worker):
    colleague = User.objects.create(username="Ada", role=User.Role.INSTRUCTOR)
    first = run_wait(
        services.run_start(
            account=instructor, kind=Run.Kind.EXAMPLE, subject=FLAGSHIP,
            example=FLAGSHIP,
        )
    )  # fmt: skip
    assert first.status == Run.Status.SUCCEEDED, first.error
    deployment = Deployment.objects.get(name=FLAGSHIP)
    signed_in(client, colleague)

    answer = post(client, f"/api/deployments/examples/{FLAGSHIP}/runs", {})

    assert deployment.owner == instructor
    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert "belongs to Grace" in answer.json()["detail"]
    assert Run.objects.count() == 1


def test_a_torn_down_deployment_passes_to_the_next_instructor_who_deploys(
    instructor, worker
):
    colleague = User.objects.create(username="Ada", role=User.Role.INSTRUCTOR)
    first = example_run(instructor)
    assert first.status == Run.Status.SUCCEEDED, first.error
    deployment = Deployment.objects.get(name=FLAGSHIP)
    teardown = run_wait(
        services.deployment_action_start(
            account=instructor, deployment=deployment, kind=Run.Kind.TEARDOWN
        )
    )
    assert teardown.status == Run.Status.SUCCEEDED, teardown.error

    second = example_run(colleague)

    assert second.status == Run.Status.SUCCEEDED, second.error
    deployment.refresh_from_db()
    assert deployment.owner == colleague
    assert deployment.status == Deployment.Status.LIVE
    assert not deployment.managed_by(instructor)


def test_a_deployment_taken_over_after_its_tear_down_has_nothing_to_roll_back_to(
    client, instructor, worker
):
    colleague = User.objects.create(username="Ada", role=User.Role.INSTRUCTOR)
    for _ in range(2):
        assert example_run(instructor).status == Run.Status.SUCCEEDED
    deployment = Deployment.objects.get(name=FLAGSHIP)
    assert deployment.previous_digest
    run_wait(
        services.deployment_action_start(
            account=instructor, deployment=deployment, kind=Run.Kind.TEARDOWN
        )
    )

    taken = example_run(colleague)

    assert taken.status == Run.Status.SUCCEEDED, taken.error
    deployment.refresh_from_db()
    assert deployment.previous_digest == ""
    answer = signed_in(client, colleague).post(
        f"/api/deployments/{deployment.pk}/rollback"
    )
    assert answer.status_code == HTTPStatus.CONFLICT


def test_a_torn_down_deployment_is_not_rolled_back_to_the_image_before_its_last(
    client, instructor
):
    deployment = flagship_recorded(instructor)
    deployment.previous_digest = "sha256:" + "c" * 64
    deployment.status = Deployment.Status.TORN_DOWN
    deployment.save()

    answer = signed_in(client, instructor).post(
        f"/api/deployments/{deployment.pk}/rollback"
    )

    assert answer.status_code == HTTPStatus.CONFLICT
    assert "is torn down" in answer.json()["detail"]
    assert not Run.objects.exists()


def test_a_run_says_whether_the_one_asking_may_act_on_its_deployment(
    client, others_deployment, colleague
):
    run = Run.objects.create(
        kind=Run.Kind.TEARDOWN,
        subject=others_deployment.name,
        status=Run.Status.SUCCEEDED,
        started_by=others_deployment.owner,
    )

    as_owner = signed_in(client, others_deployment.owner).get(
        f"/api/deployments/runs/{run.pk}/"
    )
    as_colleague = signed_in(client, colleague).get(f"/api/deployments/runs/{run.pk}/")

    assert as_owner.json()["deployment"]["managed"] is True
    assert as_colleague.json()["deployment"]["managed"] is False


def finished_runs(account: User, count: int) -> None:
    for number in range(count):
        run = Run.objects.create(
            kind=Run.Kind.EXAMPLE,
            subject=f"example-{number % 3}",
            example=f"example-{number % 3}",
            started_by=account,
            status=Run.Status.SUCCEEDED,
        )
        for position, name in enumerate(("check", "build"), start=1):
            run.steps.create(position=position, name=name)


def test_the_list_of_runs_costs_the_same_queries_however_many_runs(
    client, instructor, django_assert_num_queries
):
    signed_in(client, instructor)
    flagship_recorded(instructor)
    finished_runs(instructor, 2)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get("/api/deployments/runs/").json()) == 2

    finished_runs(instructor, 10)
    with django_assert_num_queries(len(few.captured_queries)):
        listed = client.get("/api/deployments/runs/").json()

    assert len(listed) == 12
    assert [step["name"] for step in listed[0]["steps"]] == ["check", "build"]
