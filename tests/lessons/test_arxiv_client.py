"""The edge to arXiv, against a local server speaking its Atom API."""

import time
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from lessons import arxiv_client
from lessons.arxiv_client import (
    ArxivBadFeed,
    ArxivId,
    ArxivIdError,
    ArxivRefused,
    ArxivUnavailable,
    arxiv_id_parse,
    papers_fetch,
)
from tests.lessons.arxiv_server import Answer, Version, entry, error_feed, feed

pytestmark = pytest.mark.django_db

FIRST = Version(title="Threat modelling pipelines", date="2025-06-06T19:06:59Z")
SECOND = Version(title="Threat modelling CI/CD pipelines", date="2025-07-01T08:00:00Z")


@pytest.fixture
def server(arxiv_server):
    arxiv_server.add("2506.06478", FIRST, SECOND)
    arxiv_server.add("2511.05720", FIRST)
    arxiv_server.add(
        "hep-th/9901001", Version(title="Strings", date="1999-01-04T00:00:00Z")
    )
    return arxiv_server


def test_a_batch_of_known_ids_is_fetched_in_one_request(server):
    result = papers_fetch(["2506.06478", "2511.05720", "hep-th/9901001"])

    assert [seen.ids for seen in server.requests] == [
        ["2506.06478", "2511.05720", "hep-th/9901001"]
    ]
    assert {str(i): r.title for i, r in result.found.items()} == {
        "2506.06478": SECOND.title,
        "2511.05720": FIRST.title,
        "hep-th/9901001": "Strings",
    }
    assert result.unknown == [] and result.failed == {}


def test_ids_beyond_the_batch_size_go_in_further_requests(server, settings):
    settings.ARXIV_BATCH_SIZE = 2

    result = papers_fetch(["2506.06478", "2511.05720", "hep-th/9901001"])

    assert [len(seen.ids) for seen in server.requests] == [2, 1]
    assert len(result.found) == 3


def test_an_id_without_version_gets_the_newest_with_its_number(server):
    record = papers_fetch(["2506.06478"]).found[ArxivId("2506.06478")]

    assert (record.base, record.version) == ("2506.06478", 2)
    assert record.published.isoformat() == "2025-06-06T19:06:59+00:00"
    assert record.updated.isoformat() == "2025-07-01T08:00:00+00:00"


def test_an_explicit_version_gets_that_version(server):
    record = papers_fetch(["2506.06478v1"]).found[ArxivId("2506.06478", 1)]

    assert record.version == 1
    assert record.title == FIRST.title


def test_a_title_changed_between_versions_comes_back_per_version(server):
    result = papers_fetch(["2506.06478v1", "2506.06478"])

    assert result.found[ArxivId("2506.06478", 1)].title == FIRST.title
    assert result.found[ArxivId("2506.06478")].title == SECOND.title
    assert len(server.requests) == 1


def test_an_unknown_id_beside_known_ones_costs_no_further_request(server):
    # arXiv counts the unknown id in the feed's total, as if a second page
    # held it.
    result = papers_fetch(["2506.06478", "2507.99999"])

    assert len(server.requests) == 1
    assert list(result.found) == [ArxivId("2506.06478")]
    assert result.unknown == [ArxivId("2507.99999")]
    assert result.failed == {}


def test_an_unknown_id_is_reported_not_dropped(server):
    result = papers_fetch(["2506.06478", "2501.00001", "2506.06478v7"])

    assert [str(i) for i in result.unknown] == ["2501.00001", "2506.06478v7"]
    assert list(result.found) == [ArxivId("2506.06478")]


@pytest.mark.parametrize(
    "value",
    [
        "2506.0647",  # a four-digit number after 2015
        "0704.00001",  # a five-digit number before 2015
        "2513.00001",  # month 13
        "0703.0001",  # new-style ids began in April 2007
        "9912.12345",  # December 2099: no id is dated after this month
        "hep-th/0704001",  # old-style ids ended in March 2007
        "foo/9901001",  # no such archive
        "hep/9901001",
        "2506.06478v0",
        "2511.00000",  # papers are numbered from 1
        "hep-th/9901000",
        "\uff12\uff15\uff10\uff16.06478",  # full-width digits
        "2506.06478v\u0662",  # an Arabic-Indic two
        "../../etc/passwd",
        "2506.06478,2511.05720",
        "",
    ],
)
def test_a_malformed_id_is_refused_before_any_request(server, value):
    with pytest.raises(ArxivIdError, match="is not an arXiv identifier"):
        papers_fetch(["2506.06478", value])

    assert server.requests == []


def test_old_style_ids_keep_base_and_version_apart():
    assert arxiv_id_parse("hep-th/9901001v2") == ArxivId("hep-th/9901001", 2)


@pytest.mark.parametrize("value", ["arXiv:2506.06478v2", " arxiv:2506.06478v2 "])
def test_an_id_as_arxiv_prints_it_is_taken(value):
    assert arxiv_id_parse(value) == ArxivId("2506.06478", 2)


def test_an_old_style_id_loses_its_subject_class_as_on_arxiv():
    assert arxiv_id_parse("math.GT/0309136v1") == ArxivId("math/0309136", 1)


def test_an_old_style_id_with_a_subject_class_is_fetched(server):
    server.add("math/0309136", Version(title="Knots", date="2003-09-09T00:00:00Z"))

    result = papers_fetch(["math.GT/0309136"])

    assert [seen.ids for seen in server.requests] == [["math/0309136"]]
    assert result.found[ArxivId("math/0309136")].title == "Knots"
    assert result.unknown == []


def test_a_malformed_id_names_its_month_before_its_digits():
    with pytest.raises(ArxivIdError, match="there is no month 34"):
        arxiv_id_parse("1234.56789")


@pytest.mark.parametrize(
    "value", ["cond-mat/0011001", "quant-ph/9508027v3", "astro-ph/0703001"]
)
def test_old_style_ids_of_each_archive_are_accepted(value):
    assert arxiv_id_parse(value).base == value.split("v")[0]


def test_a_429_is_retried_after_a_pause(server):
    server.queued = [Answer(429, b"Rate exceeded.", "text/plain")]

    result = papers_fetch(["2506.06478"])

    assert len(server.requests) == 2
    assert result.found[ArxivId("2506.06478")].title == SECOND.title


def test_a_retry_after_header_sets_the_pause(server, settings):
    server.queued = [Answer(503, b"", "text/plain", {"Retry-After": "1"})]

    started = time.monotonic()
    papers_fetch(["2506.06478"])

    assert time.monotonic() - started >= 1
    assert len(server.requests) == 2


def test_a_retry_after_that_is_not_a_number_of_seconds_is_ignored(server):
    server.queued = [Answer(429, b"", "text/plain", {"Retry-After": "\u00b2"})]

    result = papers_fetch(["2506.06478"])

    assert len(server.requests) == 2
    assert result.found[ArxivId("2506.06478")].title == SECOND.title


def test_503_until_the_retries_run_out_fails_the_batch(server, settings):
    settings.ARXIV_RETRIES = 2
    server.always = Answer(503, b"Service Unavailable", "text/plain")

    result = papers_fetch(["2506.06478", "2511.05720"])

    assert len(server.requests) == 3
    assert result.found == {}
    assert set(result.failed) == {ArxivId("2506.06478"), ArxivId("2511.05720")}
    assert all(isinstance(e, ArxivUnavailable) for e in result.failed.values())


def test_once_arxiv_is_unavailable_later_batches_are_not_tried(server, settings):
    settings.ARXIV_RETRIES = 1
    settings.ARXIV_BATCH_SIZE = 1
    server.always = Answer(503, b"", "text/plain")

    result = papers_fetch(["2506.06478", "2511.05720"])

    assert len(server.requests) == 2  # the first batch and its one retry
    assert len(result.failed) == 2


def test_a_bad_request_is_not_retried(server):
    server.queued = [Answer(400, error_feed("2506.06478"))]

    result = papers_fetch(["2506.06478"])

    assert len(server.requests) == 1
    error = result.failed[ArxivId("2506.06478")]
    assert isinstance(error, ArxivRefused) and error.status == 400


def test_arxivs_reason_for_refusing_is_reported(server):
    server.queued = [Answer(400, error_feed("2506.06478"))]

    result = papers_fetch(["2506.06478"])

    assert str(result.failed[ArxivId("2506.06478")]) == (
        "arXiv refused the request with HTTP 400: incorrect id format for 2506.06478"
    )


def test_an_error_entry_answered_with_200_is_not_taken_for_unknown_ids(server):
    server.queued = [Answer(200, error_feed("2506.06478"))]

    result = papers_fetch(["2506.06478"])

    error = result.failed[ArxivId("2506.06478")]
    assert isinstance(error, ArxivBadFeed)
    assert "incorrect id format for 2506.06478" in str(error)
    assert result.unknown == [] and result.found == {}


@pytest.mark.parametrize(
    "body",
    [
        b"Service temporarily unavailable",
        b"<html><body><h1>Maintenance</h1></body></html>",
        b'<?xml version="1.0"?><error>quota</error>',
        b"",
    ],
)
def test_a_feed_that_is_not_xml_is_reported(server, body):
    server.queued = [Answer(200, body, "text/html")]

    result = papers_fetch(["2506.06478"])

    error = result.failed[ArxivId("2506.06478")]
    assert isinstance(error, ArxivBadFeed)
    assert result.found == {} and result.unknown == []


def test_a_feed_with_an_entry_whose_date_is_not_a_date_is_reported(server):
    body = feed([entry("2506.06478", 1, [FIRST])]).replace(
        FIRST.date.encode(), b"the sixth of June"
    )
    server.queued = [Answer(200, body)]

    result = papers_fetch(["2506.06478", "2511.05720"])

    assert len(server.requests) == 1
    assert set(result.failed) == {ArxivId("2506.06478"), ArxivId("2511.05720")}
    assert all(isinstance(e, ArxivBadFeed) for e in result.failed.values())


def test_an_answer_far_larger_than_a_feed_is_refused(server, monkeypatch):
    monkeypatch.setattr(arxiv_client, "MAX_FEED_BYTES", 100 * 1024)
    server.queued = [Answer(200, b"<feed>" + b" " * 200 * 1024 + b"</feed>")]

    result = papers_fetch(["2506.06478"])

    assert len(server.requests) == 1
    error = result.failed[ArxivId("2506.06478")]
    assert isinstance(error, ArxivBadFeed) and "larger than" in str(error)


def test_a_server_that_does_not_answer_times_out(server, settings):
    settings.ARXIV_TIMEOUT_SECONDS = 0.3
    settings.ARXIV_RETRIES = 1
    server.hang_seconds = 3

    started = time.monotonic()
    result = papers_fetch(["2506.06478"])

    assert time.monotonic() - started < 2
    assert isinstance(result.failed[ArxivId("2506.06478")], ArxivUnavailable)
    assert len(server.requests) == 2


def test_an_answer_that_trickles_in_times_out_as_a_whole(server, settings):
    settings.ARXIV_TIMEOUT_SECONDS = 0.5
    settings.ARXIV_RETRIES = 0
    server.trickle_seconds = 0.003  # over 3 s for the whole feed

    started = time.monotonic()
    result = papers_fetch(["2506.06478"])

    assert time.monotonic() - started < 2
    assert isinstance(result.failed[ArxivId("2506.06478")], ArxivUnavailable)


def test_an_answer_trickling_in_from_its_status_line_times_out(server, settings):
    settings.ARXIV_TIMEOUT_SECONDS = 0.5
    settings.ARXIV_RETRIES = 0
    server.trickle_all_seconds = 0.05  # each byte well within a read timeout

    started = time.monotonic()
    result = papers_fetch(["2506.06478"])

    assert time.monotonic() - started < 2
    assert isinstance(result.failed[ArxivId("2506.06478")], ArxivUnavailable)


def test_nothing_listening_is_unavailable(settings):
    settings.ARXIV_API_URL = "http://127.0.0.1:9/api/query"
    settings.ARXIV_RETRIES = 0

    result = papers_fetch(["2506.06478"])

    assert isinstance(result.failed[ArxivId("2506.06478")], ArxivUnavailable)


@pytest.mark.parametrize("url", ["not a url", "ftp://arxiv.example/api", "https://"])
def test_an_arxiv_address_no_request_could_reach_stops_the_site(settings, url):
    settings.ARXIV_API_URL = url

    errors = [message for message in run_checks() if message.id == "lessons.E001"]

    assert len(errors) == 1
    assert "ARXIV_API_URL must be an http(s) URL" in errors[0].msg


def test_an_arxiv_address_with_a_query_string_stops_the_site(settings):
    settings.ARXIV_API_URL = "https://mirror.example/api/query?key=1"

    errors = [message for message in run_checks() if message.id == "lessons.E001"]

    assert len(errors) == 1
    assert "no query string" in errors[0].msg


@pytest.mark.parametrize(
    "name", ["ARXIV_RETRIES", "ARXIV_BACKOFF_SECONDS", "ARXIV_REQUEST_INTERVAL_SECONDS"]
)
def test_a_negative_arxiv_setting_stops_the_site(settings, name):
    setattr(settings, name, -1)

    errors = [message for message in run_checks() if message.id == "lessons.E001"]

    assert [error.msg for error in errors] == [f"{name} must be 0 or more."]


def test_asking_arxiv_itself_more_often_than_every_three_seconds_stops_the_site(
    settings,
):
    settings.ARXIV_API_URL = "https://export.arxiv.org/api/query"
    settings.ARXIV_REQUEST_INTERVAL_SECONDS = 1

    errors = [message for message in run_checks() if message.id == "lessons.E001"]

    assert len(errors) == 1
    assert "at least 3 when asking arXiv itself" in errors[0].msg


def test_a_local_stand_in_for_arxiv_may_be_asked_more_often(settings):
    settings.ARXIV_API_URL = "http://127.0.0.1:8999/api/query"
    settings.ARXIV_REQUEST_INTERVAL_SECONDS = 0.05

    assert [m for m in run_checks() if m.id == "lessons.E001"] == []


def test_an_endless_arxiv_timeout_stops_the_site(settings):
    settings.ARXIV_TIMEOUT_SECONDS = float("inf")

    errors = [message for message in run_checks() if message.id == "lessons.E001"]

    assert [error.msg for error in errors] == [
        "ARXIV_TIMEOUT_SECONDS must be positive."
    ]


def test_an_id_of_the_current_month_is_taken_and_one_of_next_month_refused():
    today = timezone.now()
    this_month = f"{today:%y%m}.00001"
    following = today.replace(day=1) + timedelta(days=32)

    assert arxiv_id_parse(this_month).base == this_month
    with pytest.raises(ArxivIdError, match="dated"):
        arxiv_id_parse(f"{following:%y%m}.00001")
