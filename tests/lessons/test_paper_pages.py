"""Paper pages, citation notices, the citations report, papers in the
neighbourhood and in the admin."""

import time
from http import HTTPStatus

import pytest
from celery.contrib.testing.worker import start_worker

from accounts.models import User
from config.celery import app
from lessons.models import Citation, LessonTag, Paper, Tag
from lessons.services import lesson_citations_sync, papers_refresh
from tests.lessons.arxiv_server import Answer, Version
from tests.lessons.factories import EdgeFactory, LessonFactory, admin_change_form

pytestmark = pytest.mark.django_db

FIRST = Version(
    title="Remote builds with Jenkins",
    date="2025-11-07T10:00:00Z",
    authors=("Kawshik Kumar Paul", "Sawmik Kumar Paul"),
    abstract="Builds move off the controller.",
    category="cs.DC",
)
LATEST = Version(
    title="Remote container builds with Jenkins",
    date="2025-12-01T09:30:00Z",
    authors=("Kawshik Kumar Paul", "Sawmik Kumar Paul"),
    abstract="Builds and packaging move to a remote Docker host.",
    category="cs.DC",
)
WITHDRAWN = Version(
    title="Remote container builds with Jenkins",
    date="2026-01-10T09:00:00Z",
    comment="This paper has been withdrawn by the authors: the results are wrong.",
)


def account(role: str) -> User:
    return User.objects.create(username=f"{role}-account", role=role)


@pytest.fixture
def cited(arxiv_server):
    """A lesson citing v1 of a paper now at v2, fetched from arXiv."""
    arxiv_server.add("2511.05720", FIRST, LATEST)
    lesson = LessonFactory(title="Controller-light Jenkins")
    paper = Paper.objects.create(arxiv_id="2511.05720")
    Citation.objects.create(lesson=lesson, paper=paper, version=1)
    papers_refresh()
    return lesson


def test_paper_page_shows_the_paper_and_the_lessons_citing_it(client, cited):
    other = LessonFactory(title="Build hosts")
    Citation.objects.create(lesson=other, paper=Paper.objects.get())
    papers_refresh()  # records the version the new citation was made against

    response = client.get("/papers/2511.05720/")

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for shown in [
        LATEST.title,
        "Kawshik Kumar Paul, Sawmik Kumar Paul",
        LATEST.abstract,
        "<dt>First version</dt><dd>7 November 2025</dd>",
        "<dt>Latest version</dt><dd>v2, 1 December 2025</dd>",
        "<dt>Primary category</dt><dd>cs.DC</dd>",
        'href="https://arxiv.org/abs/2511.05720"',
        'href="https://arxiv.org/pdf/2511.05720"',
        f'href="/lessons/{cited.slug}/"',
        'href="https://arxiv.org/abs/2511.05720v1">v1</a>',
        f'href="/lessons/{other.slug}/"',
        "v2</a> (the newest when cited)",
        "Details fetched from arXiv on",
    ]:
        assert shown in page, shown


def test_a_lesson_citing_an_old_version_says_a_newer_one_exists(client, cited):
    page = client.get(f"/lessons/{cited.slug}/").content.decode()

    assert "A newer version exists: v2 of 1 December 2025." in page
    assert f"This lesson cites v1, titled “{FIRST.title}”." in page
    assert 'href="/papers/2511.05720/"' in page


def test_the_paper_page_names_lessons_behind_the_newest_version(client, cited):
    page = client.get("/papers/2511.05720/").content.decode()

    assert "A newer version exists: v2 of 1 December 2025." in page
    assert f"{cited.title}</a> cites v1" in page


def test_a_lesson_citing_the_newest_version_has_no_notice(client, arxiv_server):
    arxiv_server.add("2511.05720", FIRST, LATEST)
    lesson = LessonFactory()
    Citation.objects.create(
        lesson=lesson, paper=Paper.objects.create(arxiv_id="2511.05720"), version=2
    )
    papers_refresh()

    assert (
        "newer version" not in client.get(f"/lessons/{lesson.slug}/").content.decode()
    )


def test_a_version_arxiv_does_not_have_is_reported_on_the_pages(client, cited):
    instructor = account(User.Role.INSTRUCTOR)
    lesson = LessonFactory(title="Cites the future", author=instructor)
    Citation.objects.create(lesson=lesson, paper=Paper.objects.get(), version=9)
    papers_refresh()
    client.force_login(instructor)

    lesson_page = client.get(f"/lessons/{lesson.slug}/").content.decode()
    paper_page = client.get("/papers/2511.05720/").content.decode()
    report = client.get("/citations/")

    assert "No such version: this lesson cites v9, but at the last refresh" in (
        lesson_page
    )
    assert "the newest version on arXiv was v2." in lesson_page
    assert f"{lesson.title}</a> cites v9, but at the last refresh" in paper_page
    assert [c.lesson for c in report.context["citations"]] == [lesson]
    assert "No such version on arXiv" in report.content.decode()


def test_a_withdrawn_paper_is_marked_on_both_pages(client, cited, arxiv_server):
    arxiv_server.add("2511.05720", FIRST, LATEST, WITHDRAWN)

    papers_refresh()

    for url in (f"/lessons/{cited.slug}/", "/papers/2511.05720/"):
        page = client.get(url).content.decode()
        assert (
            "Withdrawn: arXiv marks this paper withdrawn (v3, 10 January 2026)." in page
        )


def test_when_arxiv_is_down_the_pages_keep_the_last_details(
    client, cited, arxiv_server, settings
):
    settings.ARXIV_RETRIES = 1
    arxiv_server.always = Answer(503, b"", "text/plain")

    papers_refresh()

    response = client.get("/papers/2511.05720/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert LATEST.title in page
    assert "Details fetched from arXiv on" in page
    assert (
        "failed: arXiv is unavailable (HTTP 503 after 2 attempts). "
        "The details shown are the last the site had." in page
    )
    assert client.get(f"/lessons/{cited.slug}/").status_code == HTTPStatus.OK


def test_a_paper_arxiv_does_not_know_says_it_has_no_details(client, arxiv_server):
    Paper.objects.create(arxiv_id="2511.99998")

    papers_refresh()

    page = client.get("/papers/2511.99998/").content.decode()
    assert "No details yet: the site has not fetched this paper from arXiv." in page
    assert "bundled" not in page
    assert "the last the site had" not in page


def test_bundled_details_say_they_were_not_fetched(client):
    Paper.objects.create(arxiv_id="2506.06478", title="Bundled", version=1)

    page = client.get("/papers/2506.06478/").content.decode()

    assert "Details bundled with the site; not fetched from arXiv yet." in page


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2506.0647", "not an arXiv identifier: ids of 2506 have 5-digit numbers"),
        ("2513.00001", "there is no month 13"),
        ("hep-th/0801001", "no old-style ids are dated 0801"),
        ("not-an-id", "is not an arXiv identifier"),
        ("1234.56789", "there is no month 34"),
        ("\uff12\uff15\uff10\uff16.06478", "is not an arXiv identifier"),
        ("2511.00000", "papers are numbered from 1"),
    ],
)
def test_a_malformed_paper_address_is_404_with_the_reason(client, address, reason):
    response = client.get(f"/papers/{address}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert reason in response.content.decode()


def test_a_very_long_paper_address_is_404_naming_only_its_start(client):
    response = client.get(f"/papers/{'9' * 5000}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert f"&#x27;{'9' * 60}…&#x27; is not an arXiv identifier" in (
        response.content.decode()
    )
    assert f"{'9' * 61}&#x27; is not" not in response.content.decode()


def test_a_paper_the_site_does_not_hold_is_404(client):
    response = client.get("/papers/2506.06478/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "No lesson cites arXiv:2506.06478" in response.content.decode()


def test_a_versioned_address_leads_to_the_paper(client):
    Paper.objects.create(arxiv_id="hep-th/9901001")

    response = client.get("/papers/hep-th/9901001v2/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/papers/hep-th/9901001/"
    assert client.get(response["Location"]).status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    "address", ["arXiv:2506.06478", "arxiv:2506.06478v2", "ARXIV:2506.06478"]
)
def test_an_address_with_arxivs_prefix_leads_to_the_paper(client, address):
    Paper.objects.create(arxiv_id="2506.06478")

    response = client.get(f"/papers/{address}/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/papers/2506.06478/"


def test_a_subject_class_in_a_lesson_tag_cites_the_paper_as_arxiv_lists_it(client):
    lesson = LessonFactory()
    tag = Tag.objects.create(name="arxiv:math.GT/0309136v2")
    LessonTag.objects.create(lesson=lesson, tag=tag)

    lesson_citations_sync(lesson=lesson)
    response = client.get("/papers/math.GT/0309136/")

    citation = lesson.citations.get()
    assert (citation.paper.arxiv_id, citation.version) == ("math/0309136", 2)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/papers/math/0309136/"


# The citations report -------------------------------------------------------


def test_an_instructor_sees_the_citations_of_their_lessons_to_check(client, cited):
    instructor = account(User.Role.INSTRUCTOR)
    cited.author = instructor
    cited.save()
    someone_elses = LessonFactory(title="Not theirs")
    Citation.objects.create(lesson=someone_elses, paper=Paper.objects.get(), version=1)
    client.force_login(instructor)

    response = client.get("/citations/")

    assert response.status_code == HTTPStatus.OK
    assert [c.lesson for c in response.context["citations"]] == [cited]
    page = response.content.decode()
    assert f"title was “{FIRST.title}”" in page


def test_staff_see_every_lesson_to_check(client, cited):
    Citation.objects.create(
        lesson=LessonFactory(title="Also citing"), paper=Paper.objects.get(), version=1
    )
    client.force_login(account(User.Role.STAFF))

    citations = client.get("/citations/").context["citations"]

    assert len(citations) == 2


def test_an_arxiv_outage_puts_nothing_on_the_citations_report(
    client, arxiv_server, settings
):
    instructor = account(User.Role.INSTRUCTOR)
    arxiv_server.add("2511.05720", FIRST, LATEST)
    lesson = LessonFactory(author=instructor)
    Citation.objects.create(
        lesson=lesson, paper=Paper.objects.create(arxiv_id="2511.05720"), version=2
    )
    papers_refresh()
    settings.ARXIV_RETRIES = 0
    arxiv_server.always = Answer(503, b"", "text/plain")
    papers_refresh()
    client.force_login(instructor)

    response = client.get("/citations/")

    assert Paper.objects.get().refresh_error.startswith("arXiv is unavailable")
    assert response.context["citations"] == []


def test_a_paper_arxiv_does_not_know_is_on_the_citations_report(client, arxiv_server):
    instructor = account(User.Role.INSTRUCTOR)
    lesson = LessonFactory(author=instructor)
    Citation.objects.create(
        lesson=lesson, paper=Paper.objects.create(arxiv_id="2511.05720"), version=1
    )
    papers_refresh()
    client.force_login(instructor)

    response = client.get("/citations/")

    assert [c.lesson for c in response.context["citations"]] == [lesson]
    assert "Not found on arXiv" in response.content.decode()


def test_learners_are_refused_the_citations_report(client):
    client.force_login(account(User.Role.LEARNER))

    response = client.get("/citations/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "shown to instructors and staff" in response.content.decode()


@pytest.mark.parametrize(
    ("role", "linked"),
    [(User.Role.INSTRUCTOR, True), (User.Role.STAFF, True), (User.Role.LEARNER, False)],
)
def test_the_header_links_the_citations_report_for_instructors(client, role, linked):
    client.force_login(account(role))

    page = client.get("/").content.decode()

    assert ('href="/citations/"' in page) == linked


def test_the_citations_report_asks_visitors_to_sign_in(client):
    response = client.get("/citations/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/signin")


# The neighbourhood ----------------------------------------------------------


def test_the_api_says_what_the_pages_say_about_a_citation(client, cited):
    lesson = client.get(f"/api/lessons/{cited.slug}/").json()
    papers = client.get("/api/papers/").json()

    assert lesson["citations"] == [
        {
            "arxiv_id": "2511.05720",
            "cited_version": 1,
            "version_seen": None,
            "newer_version": 2,
            "missing_version": None,
            "withdrawn": False,
            "title": LATEST.title,
            "abs_url": "https://arxiv.org/abs/2511.05720",
        }
    ]
    paper = papers["results"][0]
    assert (paper["withdrawn"], paper["refresh_failed"], paper["refresh_error"]) == (
        False,
        None,
        "",
    )


def test_papers_are_nodes_of_the_neighbourhood(client, cited):
    neighbour = LessonFactory()
    EdgeFactory(source=cited, target=neighbour)

    body = client.get(f"/api/lessons/{cited.slug}/neighborhood").json()

    assert {
        (n["kind"], n.get("slug") or n["arxiv_id"], n["hop"]) for n in body["nodes"]
    } == {
        ("lesson", cited.slug, 0),
        ("lesson", neighbour.slug, 1),
        ("paper", "2511.05720", 1),
    }
    assert {
        "source": cited.slug,
        "target": "arxiv:2511.05720",
        "kind": "cites",
        "note": "v1",
    } in body["edges"]


def test_papers_cited_by_neighbours_are_one_hop_further(client, cited):
    center = LessonFactory()
    EdgeFactory(source=center, target=cited)

    one = client.get(f"/api/lessons/{center.slug}/neighborhood").json()
    two = client.get(f"/api/lessons/{center.slug}/neighborhood?depth=2").json()

    assert [n for n in one["nodes"] if n["kind"] == "paper"] == []
    assert [n["hop"] for n in two["nodes"] if n["kind"] == "paper"] == [2]


def test_the_lesson_picture_draws_its_papers(client, cited):
    page = client.get(f"/lessons/{cited.slug}/").content.decode()

    svg = page[page.index("<svg") : page.index("</svg>")]
    assert 'href="/papers/2511.05720/" class="node paper hop-1"' in svg
    assert 'class="edge edge-cites"' in svg


# The admin ------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(
        User.objects.create(
            username="Editor", role=User.Role.STAFF, is_staff=True, is_superuser=True
        )
    )
    return client


@pytest.fixture
def worker(transactional_db):
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        yield


def test_adding_a_paper_in_the_admin_fetches_it_in_the_background(
    admin_client, arxiv_server, worker
):
    arxiv_server.add(
        "hep-th/9901001", Version(title="Strings", date="1999-01-04T00:00:00Z")
    )

    response = admin_client.post(
        "/admin/lessons/paper/add/", {"arxiv_id": "hep-th/9901001v1"}
    )

    assert response.status_code == HTTPStatus.FOUND
    paper = Paper.objects.get()
    assert paper.arxiv_id == "hep-th/9901001"
    deadline = time.monotonic() + 30
    while not paper.fetched and time.monotonic() < deadline:
        time.sleep(0.2)
        paper.refresh_from_db()
    assert (paper.title, paper.version) == ("Strings", 1)


def test_the_admin_refuses_a_malformed_paper_id(admin_client, arxiv_server):
    response = admin_client.post(
        "/admin/lessons/paper/add/", {"arxiv_id": "2513.00001"}
    )

    assert response.status_code == HTTPStatus.OK
    assert "there is no month 13" in response.content.decode()
    assert not Paper.objects.exists()
    assert arxiv_server.requests == []


def test_an_arxiv_tag_added_to_a_lesson_in_the_admin_fetches_the_paper(
    admin_client, arxiv_server, worker
):
    from lessons.models import Tag

    arxiv_server.add("2511.05720", FIRST, LATEST)
    lesson = LessonFactory()
    tag = Tag.objects.create(name="arxiv:2511.05720v1")
    form = admin_change_form(lesson, [tag])

    response = admin_client.post(f"/admin/lessons/lesson/{lesson.pk}/change/", form)

    assert response.status_code == HTTPStatus.FOUND
    paper = Paper.objects.get()
    deadline = time.monotonic() + 30
    while not paper.fetched and time.monotonic() < deadline:
        time.sleep(0.2)
        paper.refresh_from_db()
    assert (paper.version, paper.versions["1"]["title"]) == (2, FIRST.title)
