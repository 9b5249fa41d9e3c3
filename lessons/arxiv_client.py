"""The arXiv API, asked through the ``arxiv`` package.

The package builds the queries and parses the Atom feed. Around it this
module adds what the site owes arXiv and its readers:

1. ids are checked before any request, and fetched in batches;
2. every request has a timeout, for the whole answer, and waits for its
   turn under a lock that every worker shares: one request every
   ``ARXIV_REQUEST_INTERVAL_SECONDS`` (3 s, arXiv's limit) from the whole
   site, not from each process;
3. answers 429, 502, 503 and 504, timeouts and lost connections are retried
   with growing pauses, which hold back every worker's next request; any
   other refusal (a 400 above all) is not;
4. an answer that is not an Atom feed is an error, never an empty result;
5. ids arXiv does not know are reported, not dropped.

The package's own pauses and retries are turned off: they are per process,
and retry a 400 as readily as a 503.
"""

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

import arxiv
import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from lessons.models import ArxivTurn, split_arxiv_id

logger = logging.getLogger(__name__)

ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"
ATOM_ID = "{http://www.w3.org/2005/Atom}id"
ATOM_SUMMARY = "{http://www.w3.org/2005/Atom}summary"
# The ids of the entries arXiv reports errors with.
ERROR_ENTRY_MARK = "arxiv.org/api/errors"
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
TURN_ROW = 1
TURN_MARGIN = 0.05
READ_CHUNK_BYTES = 64 * 1024
# A feed of a full batch is a few hundred kilobytes; anything far larger is
# not an answer to our query.
MAX_FEED_BYTES = 16 * 1024 * 1024


class ArxivError(Exception):
    """arXiv could not answer a request as asked."""


class ArxivIdError(ArxivError, ValueError):
    """An id that cannot be an arXiv id; nothing was asked."""


class ArxivUnavailable(ArxivError):
    """arXiv did not answer in time, or kept answering that it was busy or
    down, until the retries ran out. Asking later may work."""


class ArxivRefused(ArxivError):
    """arXiv refused the request (a 4xx other than 429): asking again the
    same way would not help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ArxivBadFeed(ArxivError):
    """arXiv answered 200 with something that is not its Atom feed."""


@dataclass(frozen=True)
class ArxivId:
    base: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.base}v{self.version}" if self.version else self.base


@dataclass(frozen=True)
class PaperRecord:
    """One version of a paper as arXiv describes it. ``published`` is the
    date of the first version, ``updated`` that of this one."""

    base: str
    version: int
    title: str
    authors: list[str]
    abstract: str
    published: datetime
    updated: datetime
    primary_category: str
    categories: list[str]
    comment: str
    journal_ref: str
    doi: str


@dataclass
class FetchResult:
    """What a fetch found, by the id asked for; the ids arXiv did not know;
    and the ids that could not be asked, with why."""

    found: dict[ArxivId, PaperRecord] = field(default_factory=dict)
    unknown: list[ArxivId] = field(default_factory=list)
    failed: dict[ArxivId, ArxivError] = field(default_factory=dict)


def arxiv_id_parse(value: str) -> ArxivId:
    """``hep-th/9901001v2`` as an ``ArxivId``; ``ArxivIdError`` when the
    text cannot be an arXiv id. The ``arXiv:`` arXiv prints before its ids
    is taken off."""
    text = value.strip()
    if text[:6].lower() == "arxiv:":
        text = text[6:]
    try:
        base, version = split_arxiv_id(text)
    except ValidationError as error:
        raise ArxivIdError(error.messages[0]) from None
    return ArxivId(base, version)


def papers_fetch(ids: Iterable[str | ArxivId]) -> FetchResult:
    """Fetch the metadata of every id, in batches of ``ARXIV_BATCH_SIZE``.
    An id without a version gets the newest version.

    Every id is checked before the first request: one bad id raises
    ``ArxivIdError`` and nothing is asked. A batch arXiv refuses, or answers
    with something other than its feed, fails alone; once arXiv is
    unavailable, the batches left are not tried."""
    wanted = list(dict.fromkeys(_parsed(ids)))
    client = _client()
    result = FetchResult()
    size = settings.ARXIV_BATCH_SIZE
    batches = [wanted[start : start + size] for start in range(0, len(wanted), size)]
    for index, batch in enumerate(batches):
        try:
            found = _fetch_batch(client, batch)
        except ArxivUnavailable as error:
            for rest in batches[index:]:
                result.failed.update(dict.fromkeys(rest, error))
            break
        except (ArxivRefused, ArxivBadFeed) as error:
            logger.warning("arXiv batch %s failed: %s", [str(i) for i in batch], error)
            result.failed.update(dict.fromkeys(batch, error))
            continue
        result.found.update(found)
        result.unknown.extend(arxiv_id for arxiv_id in batch if arxiv_id not in found)
    if result.unknown:
        logger.warning(
            "arXiv does not know %s", ", ".join(str(i) for i in result.unknown)
        )
    return result


def _parsed(ids: Iterable[str | ArxivId]) -> Iterator[ArxivId]:
    for value in ids:
        yield value if isinstance(value, ArxivId) else arxiv_id_parse(value)


def _fetch_batch(client: "_Client", batch: list[ArxivId]) -> dict[ArxivId, PaperRecord]:
    """One batch, retried as ``ARXIV_RETRIES`` allows."""
    search = arxiv.Search(id_list=[str(arxiv_id) for arxiv_id in batch])
    search.max_results = len(batch)
    client.page_size = len(batch)
    retries = settings.ARXIV_RETRIES
    for attempt in range(retries + 1):
        try:
            entries = list(client.results(search))
        except arxiv.HTTPError as error:
            if error.status not in RETRIED_STATUSES:
                reason = client.session.refusal
                raise ArxivRefused(
                    f"arXiv refused the request with HTTP {error.status}"
                    + (f": {reason}" if reason else ""),
                    status=error.status,
                ) from None
            problem = f"HTTP {error.status}"
        except requests.RequestException as error:
            problem = type(error).__name__
        except arxiv.UnexpectedEmptyPageError:
            raise ArxivBadFeed("arXiv answered an unexpectedly empty page") from None
        except ValueError as error:
            # The package's parser gives up on an entry it cannot read, such
            # as one whose date is not a date.
            raise ArxivBadFeed(f"arXiv's feed cannot be read ({error})") from None
        else:
            return _match(batch, entries)

        if attempt == retries:
            break
        pause = _pause(attempt, client.session.retry_after)
        logger.warning(
            "arXiv answered %s for %s; retrying in %.1f s",
            problem,
            search.id_list,
            pause,
        )
        # Every worker pauses, not only this one: the next turn, whoever
        # takes it, comes after the pause.
        arxiv_turn_defer(pause)
    attempts = f"{retries + 1} attempt{'s' if retries else ''}"
    raise ArxivUnavailable(f"arXiv is unavailable ({problem} after {attempts})")


def _pause(attempt: int, retry_after: float | None) -> float:
    """Doubling pauses from ``ARXIV_BACKOFF_SECONDS``; a Retry-After header
    asks for longer, up to ``ARXIV_BACKOFF_MAX_SECONDS``."""
    pause = settings.ARXIV_BACKOFF_SECONDS * 2**attempt
    if retry_after is not None:
        pause = max(pause, retry_after)
    return float(min(pause, settings.ARXIV_BACKOFF_MAX_SECONDS))


def _match(
    batch: list[ArxivId], entries: list[arxiv.Result]
) -> dict[ArxivId, PaperRecord]:
    """Pair the entries of a feed with the ids asked for. An id without a
    version is answered by the newest version, with one."""
    found: dict[ArxivId, PaperRecord] = {}
    for entry in entries:
        try:
            record = _record(entry)
        except (ValidationError, ValueError) as error:
            logger.warning("Skipping an arXiv entry %s: %s", entry.entry_id, error)
            continue
        exact, newest = ArxivId(record.base, record.version), ArxivId(record.base)
        if exact in batch:
            found[exact] = record
        # A batch asking for a paper and for one of its versions gets both.
        if newest in batch and (
            newest not in found or found[newest].version < record.version
        ):
            found[newest] = record
    return found


def _record(entry: arxiv.Result) -> PaperRecord:
    base, version = split_arxiv_id(entry.get_short_id())
    if version is None:
        raise ValueError("the entry's id carries no version")
    return PaperRecord(
        base=base,
        version=version,
        title=entry.title.strip(),
        authors=[author.name for author in entry.authors],
        abstract=" ".join(entry.summary.split()),
        published=entry.published,
        updated=entry.updated,
        primary_category=entry.primary_category,
        categories=list(entry.categories),
        comment=(entry.comment or "").strip(),
        journal_ref=(entry.journal_ref or "").strip(),
        doi=(entry.doi or "").strip(),
    )


def _client() -> "_Client":
    return _Client(
        api_url=settings.ARXIV_API_URL,
        session=_Session(
            timeout=settings.ARXIV_TIMEOUT_SECONDS,
            interval=settings.ARXIV_REQUEST_INTERVAL_SECONDS,
        ),
    )


class _Client(arxiv.Client):
    def __init__(self, *, api_url: str, session: "_Session") -> None:
        # Our own turns and retries replace the package's.
        super().__init__(delay_seconds=0, num_retries=0)
        escaped = api_url.replace("{", "{{").replace("}", "}}")
        self.query_url_format = f"{escaped}?{{}}"
        # The package offers no way to pass a session in; its own has no
        # timeout and no shared turns, so it is replaced.
        self._session = session
        self.session = session

    def results(self, search: arxiv.Search, offset: int = 0) -> Iterator[arxiv.Result]:
        """The first page only. A batch fits in one page, and arXiv counts
        the ids it does not know in the feed's total: the package would take
        the page for a partial one and ask for the next, past the end, which
        arXiv answers with an empty page the package calls an error."""
        url = self._format_url(search, offset, self.page_size)
        return iter(self._parse_feed(url, first_page=True).results)


class _Session(requests.Session):
    """Every request waits for its turn, carries a timeout for the whole
    answer, and must come back as an Atom feed when it succeeds."""

    def __init__(self, *, timeout: float, interval: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.interval = interval
        self.retry_after: float | None = None
        # arXiv's own words when its answer is an error entry, else "".
        self.refusal = ""
        adapter = _WatchedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs["stream"] = True  # the body is read by _read_before
        self.retry_after = None
        self.refusal = ""
        arxiv_turn_wait(self.interval)
        deadline = time.monotonic() + self.timeout
        watch = _Watch(self.timeout)
        token = _current_watch.set(watch)
        try:
            response = super().request(method, url, *args, **kwargs)
            self.retry_after = _retry_after(response)
            _read_before(response, deadline)
        except requests.RequestException:
            if watch.fired:
                raise _too_long() from None
            raise
        finally:
            watch.stop()
            _current_watch.reset(token)
        if watch.fired:
            raise _too_long()
        self.refusal = _arxiv_error(response.content)
        if response.status_code == requests.codes.ok:
            _check_feed(response)
            if self.refusal:
                raise ArxivBadFeed(f"arXiv answered with an error: {self.refusal}")
        return response


def _too_long() -> requests.Timeout:
    return requests.Timeout("arXiv's answer took too long to arrive")


class _Watch:
    """Cuts the connection of a request still under way when its time is
    up. The timeout requests applies is to each read of the socket, so a
    server sending its status line, headers or body a byte at a time would
    otherwise hold the request open for as long as it likes."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock
            if self.fired:
                self._cut()

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._socket = None

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._cut()

    def _cut(self) -> None:
        if self._socket is None:
            return
        with contextlib.suppress(OSError):  # closed already
            self._socket.shutdown(socket.SHUT_RDWR)


_current_watch: ContextVar[_Watch | None] = ContextVar("arxiv_watch", default=None)


class _WatchedConnectionMixin:
    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        # The request has been sent; from here on, the answer is awaited.
        watch = _current_watch.get()
        if watch is not None:
            watch.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(
    _WatchedConnectionMixin, urllib3.connection.HTTPConnection
):
    pass


class _WatchedHTTPSConnection(
    _WatchedConnectionMixin, urllib3.connection.HTTPSConnection
):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections, direct or through a proxy, let the
    request's ``_Watch`` cut them."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager


def _read_before(response: requests.Response, deadline: float) -> None:
    """Read the whole body by ``deadline``, and no more than
    ``MAX_FEED_BYTES`` of it."""
    body = bytearray()
    # read1 returns what has arrived; iter_content would wait for a whole
    # chunk, one slow read after another, before the deadline is looked at.
    with response:
        try:
            while chunk := response.raw.read1(READ_CHUNK_BYTES, decode_content=True):
                body += chunk
                if time.monotonic() > deadline:
                    raise _too_long()
                if len(body) > MAX_FEED_BYTES:
                    raise ArxivBadFeed(
                        f"arXiv's answer is larger than {MAX_FEED_BYTES} bytes"
                    )
        except urllib3.exceptions.ReadTimeoutError as error:
            raise requests.Timeout(str(error)) from None
        except urllib3.exceptions.HTTPError as error:
            raise requests.ConnectionError(str(error)) from None
    response._content = bytes(body)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    # Seconds only; the date form is rare and a pause of our own serves.
    return float(value) if value.isascii() and value.isdigit() else None


def _check_feed(response: requests.Response) -> None:
    # The standard parser resolves no external entities; the package parses
    # the feed again with lxml, which would recover from broken XML silently.
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError as error:
        raise ArxivBadFeed(f"arXiv's answer is not XML ({error})") from None
    if root.tag != ATOM_FEED:
        raise ArxivBadFeed(f"arXiv's answer is not an Atom feed but <{root.tag}>")


def _arxiv_error(content: bytes) -> str:
    """The summary of the error entry arXiv puts in a feed it answers an
    unusable query with (a 400, mostly), or "" for any other answer."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return ""
    for entry in root.iter(ATOM_ENTRY):
        if ERROR_ENTRY_MARK in (entry.findtext(ATOM_ID) or ""):
            summary = " ".join((entry.findtext(ATOM_SUMMARY) or "").split())
            return summary[:200] or "no reason given"
    return ""


def arxiv_turn_wait(interval: float) -> None:
    """Wait until this process may send the next request to arXiv.

    1. Lock the one ``ArxivTurn`` row; every worker of the site, in any
       process, queues on it.
    2. Take the turn at ``next_at`` or now, whichever is later, and move
       ``next_at`` one interval (and a margin of ``TURN_MARGIN`` of it) past
       it; release the lock.
    3. Sleep until the turn comes. The lock is not held while sleeping, so
       each waiting worker has its own later turn.

    Limitation: the turns are compared on each worker's own clock; workers on
    several machines need their clocks kept in step (NTP), or the spacing
    shrinks by the difference between them.
    """
    _turn_row_ensure()
    with transaction.atomic():
        turn = ArxivTurn.objects.select_for_update().get(pk=TURN_ROW)
        now = time.time()
        start = max(now, turn.next_at)
        # A turn is when a request may leave, not when it reaches arXiv;
        # the margin covers a worker that wakes or connects a little late.
        turn.next_at = start + interval * (1 + TURN_MARGIN)
        turn.save(update_fields=["next_at"])
    if start > now:
        time.sleep(start - now)


def arxiv_turn_defer(seconds: float) -> None:
    """Hold every worker's next turn back until ``seconds`` from now, when
    arXiv has asked the site to slow down or is down. Turns taken already
    keep their time."""
    _turn_row_ensure()
    until = time.time() + seconds
    ArxivTurn.objects.filter(pk=TURN_ROW, next_at__lt=until).update(next_at=until)


def _turn_row_ensure() -> None:
    if ArxivTurn.objects.filter(pk=TURN_ROW).exists():
        return
    try:
        with transaction.atomic():
            ArxivTurn.objects.create(pk=TURN_ROW)
    except IntegrityError:
        pass  # another worker made it first
