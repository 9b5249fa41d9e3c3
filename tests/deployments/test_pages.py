"""Deployments pages, the lesson page's panel and the workflow export."""

import re
import shutil
import subprocess
import time
from http import HTTPStatus
from pathlib import Path

import pytest

from accounts.models import User
from accounts.reauth import SESSION_KEY
from deployments.examples import example_load
from deployments.github_actions import workflow_export
from deployments.models import Deployment, Run, Secret
from tests.deployments.runs import FLAGSHIP, flagship_recorded
from tests.lessons.factories import LessonFactory

ACTIONLINT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "actionlint"


def test_the_flagship_lesson_offers_instructors_to_run_its_example(client, instructor):
    LessonFactory(slug=FLAGSHIP)
    client.force_login(instructor)

    page = client.get(f"/lessons/{FLAGSHIP}/").content.decode()

    assert "Run this example" in page
    assert f"/deployments/examples/{FLAGSHIP}/run" in page


def test_learners_see_the_example_but_no_button(client, db):
    LessonFactory(slug=FLAGSHIP)

    page = client.get(f"/lessons/{FLAGSHIP}/").content.decode()

    assert "Worked example" in page
    assert "Run this example" not in page


def test_a_lesson_without_an_example_has_no_panel(client, instructor):
    lesson = LessonFactory()
    client.force_login(instructor)

    page = client.get(f"/lessons/{lesson.slug}/").content.decode()

    assert "Worked example" not in page


def test_pressing_run_without_a_fresh_passkey_asks_for_one(client, instructor):
    client.force_login(instructor)

    answer = client.post(f"/deployments/examples/{FLAGSHIP}/run")

    assert answer.status_code == HTTPStatus.FOUND
    assert answer["Location"].startswith("/accounts/reauthenticate/")
    assert not Run.objects.exists()


def test_pressing_run_with_a_fresh_passkey_opens_the_run_page(
    client, instructor, deployments_home
):
    client.force_login(instructor)
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()

    answer = client.post(f"/deployments/examples/{FLAGSHIP}/run")

    run = Run.objects.get()
    assert answer.status_code == HTTPStatus.FOUND
    assert answer["Location"] == f"/deployments/runs/{run.pk}/"
    page = client.get(answer["Location"]).content.decode()
    assert f"/api/deployments/runs/{run.pk}/" in page
    assert "leak gate" in page


def test_pressing_run_with_an_unknown_builder_answers_400_naming_it(
    client, instructor, deployments_home
):
    client.force_login(instructor)
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()

    answer = client.post(f"/deployments/examples/{FLAGSHIP}/run", {"builder": "kaniko"})

    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert "builder" in answer.content.decode()
    assert not Run.objects.exists()
    assert not Secret.objects.exists()


def test_the_deployments_page_says_what_is_missing(client, instructor, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    client.force_login(instructor)

    page = client.get("/deployments/").content.decode()

    assert "cannot run on this machine" in page
    assert "apt-get install buildah" in page
    assert "make provision" in page


def test_a_broken_example_is_named_on_the_deployments_page_beside_the_others(
    client, instructor, settings, tmp_path
):
    shutil.copytree(settings.DEPLOYMENTS_EXAMPLES_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "broken" / "context").mkdir(parents=True)
    (tmp_path / "broken" / "context" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "broken" / "manifest.yaml").write_text(
        "port: 80\nhealth_path: /\nresources: [1]\n"
    )
    settings.DEPLOYMENTS_EXAMPLES_DIR = tmp_path
    client.force_login(instructor)

    response = client.get("/deployments/")

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert f"/deployments/examples/{FLAGSHIP}/run" in page
    assert "broken</strong>: broken: resources must map" in page


def test_the_deployments_page_is_for_instructors(client, db):
    client.force_login(User.objects.create(username="Lin"))

    assert client.get("/deployments/").status_code == HTTPStatus.FORBIDDEN


def test_a_learner_is_told_how_an_account_becomes_an_instructor(client, db):
    LessonFactory(slug=FLAGSHIP)
    client.force_login(User.objects.create(username="Lin"))

    lesson = client.get(f"/lessons/{FLAGSHIP}/").content.decode()
    refused = client.get("/deployments/").content.decode()

    assert "set_role NAME instructor" in lesson
    assert "set_role NAME instructor" in refused


def actionlint(folder: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    """Lint ``workflow`` as a file of ``folder``."""
    path = folder / "deploy.yml"
    path.write_text(workflow)
    return subprocess.run([str(ACTIONLINT), str(path)], capture_output=True, text=True)


def test_the_exported_workflow_passes_actionlint(tmp_path):
    text = workflow_export(example_load(FLAGSHIP))

    linted = actionlint(tmp_path, text)

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "buildah bud" in text
    assert "--secret id=build_token" in text
    assert '"$IMAGE@$DIGEST"' in text
    assert "--read-only --cap-drop ALL" in text


def test_the_exported_workflow_runs_the_container_with_the_manifest_s_options(
    tmp_path, settings
):
    shutil.copytree(settings.DEPLOYMENTS_EXAMPLES_DIR, tmp_path / "examples")
    settings.DEPLOYMENTS_EXAMPLES_DIR = tmp_path / "examples"
    with (tmp_path / "examples" / FLAGSHIP / "manifest.yaml").open("a") as manifest:
        manifest.write(
            "run: {environment: {GREETING: 'hello world'}, "
            "ports: ['127.0.0.1::8081'], ipc_mode: private, "
            "security_opt: [apparmor=docker-default]}\n"
        )

    text = workflow_export(example_load(FLAGSHIP))

    linted = actionlint(tmp_path, text)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "--env 'GREETING=hello world'" in text
    assert "--publish 127.0.0.1::8081" in text
    assert "--ipc private" in text
    assert "--security-opt apparmor=docker-default" in text


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = workflow_export(example_load(FLAGSHIP)).replace(
        "needs.build.outputs.digest", "needs.biuld.outputs.digest"
    )

    assert actionlint(tmp_path, broken).returncode != 0


def owned_deployment(owner: User) -> Deployment:
    return Deployment.objects.create(
        name="web",
        repository="127.0.0.1:5055/examples/web",
        digest="sha256:" + "b" * 64,
        previous_digest="sha256:" + "a" * 64,
        container_name="web-r1",
        owner=owner,
    )


def colleague_signed_in(client) -> None:
    client.force_login(User.objects.create(username="Ada", role=User.Role.INSTRUCTOR))
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()


@pytest.mark.parametrize(
    ("action", "doing"),
    [("rollback", "roll it back"), ("teardown", "tear it down")],
)
def test_another_instructor_cannot_act_on_a_deployment_from_the_page(
    client, instructor, deployments_home, action, doing
):
    deployment = owned_deployment(instructor)
    colleague_signed_in(client)

    answer = client.post(f"/deployments/{deployment.pk}/{action}")

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert f"belongs to Grace; only they or staff may {doing}" in (
        answer.content.decode()
    )
    assert not Run.objects.exists()


def test_another_instructor_cannot_read_a_deployment_s_logs_page(client, instructor):
    deployment = owned_deployment(instructor)
    colleague_signed_in(client)

    answer = client.get(f"/deployments/{deployment.pk}/logs")

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert "belongs to Grace" in answer.content.decode()


def test_the_deployments_page_offers_actions_only_to_the_owner(client, instructor):
    deployment = owned_deployment(instructor)
    colleague_signed_in(client)

    others = client.get("/deployments/").content.decode()
    client.force_login(instructor)
    owners = client.get("/deployments/").content.decode()

    assert f"/deployments/{deployment.pk}/teardown" not in others
    assert f"/deployments/{deployment.pk}/teardown" in owners


def test_the_lesson_panel_offers_no_run_of_another_instructor_s_deployment(
    client, instructor
):
    LessonFactory(slug=FLAGSHIP)
    flagship_recorded(instructor)
    colleague_signed_in(client)

    page = client.get(f"/lessons/{FLAGSHIP}/").content.decode()

    assert re.search(r"<button type=\"submit\" disabled>Run this example", page)
    assert "Its deployment on local belongs to Grace" in page


def test_the_lesson_panel_offers_a_run_once_the_deployment_is_torn_down(
    client, instructor
):
    LessonFactory(slug=FLAGSHIP)
    deployment = flagship_recorded(instructor)
    deployment.status = Deployment.Status.TORN_DOWN
    deployment.save()
    colleague_signed_in(client)

    page = client.get(f"/lessons/{FLAGSHIP}/").content.decode()

    assert re.search(r"<button type=\"submit\">Run this example", page)
    assert "belongs to" not in page


def test_the_deployments_page_offers_no_target_where_the_example_is_another_s(
    client, instructor
):
    flagship_recorded(instructor)
    colleague_signed_in(client)

    page = client.get("/deployments/").content.decode()

    assert '<option value="local" disabled>local (its deployment belongs to Grace)' in (
        page
    )
    assert re.search(r"<button type=\"submit\" disabled>Run this example", page)


def test_the_deployments_page_offers_no_action_the_missing_engine_would_refuse(
    client, instructor, monkeypatch
):
    owned_deployment(instructor)
    monkeypatch.setenv("PATH", "/nonexistent")
    client.force_login(instructor)

    page = client.get("/deployments/").content.decode()

    assert '<button type="submit" disabled>Tear down</button>' in page
    assert '<button type="submit" disabled>Roll back</button>' in page


def fresh_passkey(client, account: User) -> None:
    client.force_login(account)
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()


def test_a_refused_image_comes_back_to_the_form_as_sent_with_the_reason(
    client, instructor
):
    fresh_passkey(client, instructor)

    answer = client.post(
        "/deployments/images",
        {"image": "docker.io/library/nginx:1", "name": "web", "port": "9090"},
    )

    page = answer.content.decode()
    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert "Nothing was started." in page
    assert "registry-not-allowed: docker.io" in page
    assert 'value="docker.io/library/nginx:1"' in page
    assert 'value="9090"' in page
    assert not Run.objects.exists()


def test_a_second_start_links_the_run_that_is_active(
    client, instructor, deployments_home
):
    active = Run.objects.create(
        kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP,
        status=Run.Status.RUNNING, started_by=instructor,
    )  # fmt: skip
    fresh_passkey(client, instructor)

    answer = client.post(f"/deployments/examples/{FLAGSHIP}/run")

    assert answer.status_code == HTTPStatus.CONFLICT
    assert f'<a href="/deployments/runs/{active.pk}/">Follow run {active.pk}</a>' in (
        answer.content.decode()
    )


def test_a_learner_posting_to_a_deployments_form_gets_no_deployments_page(client, db):
    fresh_passkey(client, User.objects.create(username="Lin"))

    answer = client.post("/deployments/images", {"image": "x", "name": "web"})

    assert answer.status_code == HTTPStatus.FORBIDDEN
    assert "Running services" not in answer.content.decode()


def test_a_run_page_says_what_is_missing_and_offers_no_action(
    client, instructor, monkeypatch
):
    run = Run.objects.create(
        kind=Run.Kind.EXAMPLE, subject=FLAGSHIP, example=FLAGSHIP,
        status=Run.Status.SUCCEEDED, started_by=instructor,
    )  # fmt: skip
    monkeypatch.setenv("PATH", "/nonexistent")
    client.force_login(instructor)

    page = client.get(f"/deployments/runs/{run.pk}/").content.decode()

    assert "cannot run on this machine" in page
    assert "apt-get install buildah" in page
    assert "data-engine-missing" in page


def test_the_deployments_pages_answer_head_as_get(client, instructor):
    client.force_login(instructor)

    answer = client.head("/deployments/")

    assert answer.status_code == HTTPStatus.OK
    assert answer.content == b""
