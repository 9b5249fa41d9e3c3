"""A local stand-in for the arXiv API on 127.0.0.1.

It answers ``GET /api/query?id_list=...&start=...&max_results=...`` the way
arXiv does: an Atom feed with one entry per id it knows (the newest version
for an id without one, the version asked for otherwise), nothing at all for
ids it does not know, though its ``totalResults`` counts every id asked, and a
400 with an error entry for ids of the wrong shape. Tests can queue other
answers (a 429, a 503, a page that is not XML), make it hang, answer one byte
at a time (the body, or everything from the status line on), and read the
requests it saw with their arrival times.
"""

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ElementTree.register_namespace("", ATOM)
ElementTree.register_namespace("arxiv", ARXIV)
ElementTree.register_namespace("opensearch", OPENSEARCH)

# arXiv's own notion of an id's shape, kept apart from the site's.
ID_SHAPE = re.compile(
    r"^(?P<base>\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?$"
)


@dataclass
class Version:
    title: str
    date: str  # ISO 8601, UTC
    abstract: str = "An abstract."
    authors: tuple[str, ...] = ("A. Author",)
    category: str = "cs.SE"
    comment: str = ""


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/atom+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    at: float  # time.time() on arrival
    ids: list[str]


class ArxivServer:
    def __init__(self) -> None:
        self.papers: dict[str, list[Version]] = {}
        self.requests: list[Seen] = []
        self.queued: list[Answer] = []
        self.always: Answer | None = None
        self.hang_seconds = 0.0
        # A pause before each byte of the body: an answer that never stalls
        # long enough for a read timeout, yet takes long to finish.
        self.trickle_seconds = 0.0
        # The same from the status line on, headers included.
        self.trickle_all_seconds = 0.0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/api/query"

    def add(self, base: str, *versions: Version) -> None:
        self.papers[base] = list(versions)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def answer(self, ids: list[str], start: int = 0, size: int = 10) -> Answer:
        with self._lock:
            if self.queued:
                return self.queued.pop(0)
        if self.always is not None:
            return self.always
        malformed = [arxiv_id for arxiv_id in ids if not ID_SHAPE.match(arxiv_id)]
        if malformed:
            return Answer(400, error_feed(malformed[0]))
        entries = []
        for arxiv_id in ids:
            match = ID_SHAPE.match(arxiv_id)
            assert match is not None
            # arXiv lists an old-style paper without its subject class.
            base = re.sub(r"^([a-z-]+)\.[A-Z]{2}/", r"\1/", match["base"])
            versions = self.papers.get(base, [])
            number = int(match["version"] or len(versions))
            if 1 <= number <= len(versions):
                entries.append(entry(base, number, versions))
        # arXiv counts the ids it does not know in the total all the same.
        return Answer(200, feed(entries[start : start + size], total=len(ids)))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                ids = [i for i in query.get("id_list", [""])[0].split(",") if i]
                start = int(query.get("start", ["0"])[0])
                size = int(query.get("max_results", ["10"])[0])
                with server._lock:
                    server.requests.append(Seen(at=time.time(), ids=ids))
                if server.hang_seconds:
                    time.sleep(server.hang_seconds)
                if parts.path != "/api/query":
                    answer = Answer(404, b"not found", "text/plain")
                else:
                    answer = server.answer(ids, start, size)
                if server.trickle_all_seconds:
                    self.trickle_everything(answer)
                    return
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not server.trickle_seconds:
                    self.wfile.write(answer.body)
                try:
                    for byte in answer.body if server.trickle_seconds else b"":
                        time.sleep(server.trickle_seconds)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up

            def trickle_everything(self, answer: Answer) -> None:
                head = (
                    f"HTTP/1.1 {answer.status} Answer\r\n"
                    f"Content-Type: {answer.content_type}\r\n"
                    f"Content-Length: {len(answer.body)}\r\n\r\n"
                ).encode()
                try:
                    for byte in head + answer.body:
                        time.sleep(server.trickle_all_seconds)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def feed(entries: list[ElementTree.Element], total: int | None = None) -> bytes:
    root = ElementTree.Element(f"{{{ATOM}}}feed")
    ElementTree.SubElement(root, f"{{{ATOM}}}title").text = "arXiv Query"
    ElementTree.SubElement(root, f"{{{ATOM}}}id").text = "https://arxiv.org/api/query"
    ElementTree.SubElement(root, f"{{{ATOM}}}updated").text = now()
    total = len(entries) if total is None else total
    for name, value in (("totalResults", total), ("startIndex", 0)):
        ElementTree.SubElement(root, f"{{{OPENSEARCH}}}{name}").text = str(value)
    ElementTree.SubElement(root, f"{{{OPENSEARCH}}}itemsPerPage").text = str(
        len(entries)
    )
    root.extend(entries)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def entry(base: str, number: int, versions: list[Version]) -> ElementTree.Element:
    version = versions[number - 1]
    element = ElementTree.Element(f"{{{ATOM}}}entry")

    def add(tag: str, text: str | None = None, **attributes: str) -> None:
        child = ElementTree.SubElement(element, tag, attributes)
        child.text = text

    add(f"{{{ATOM}}}id", f"http://arxiv.org/abs/{base}v{number}")
    add(f"{{{ATOM}}}updated", version.date)
    add(f"{{{ATOM}}}published", versions[0].date)
    add(f"{{{ATOM}}}title", version.title)
    add(f"{{{ATOM}}}summary", f"  {version.abstract}\n")
    for author in version.authors:
        child = ElementTree.SubElement(element, f"{{{ATOM}}}author")
        ElementTree.SubElement(child, f"{{{ATOM}}}name").text = author
    if version.comment:
        add(f"{{{ARXIV}}}comment", version.comment)
    add(f"{{{ATOM}}}link", href=f"https://arxiv.org/abs/{base}v{number}", rel="alternate", type="text/html")  # fmt: skip
    add(f"{{{ATOM}}}link", title="pdf", href=f"https://arxiv.org/pdf/{base}v{number}", rel="related", type="application/pdf")  # fmt: skip
    add(f"{{{ARXIV}}}primary_category", term=version.category, scheme=ARXIV)
    add(f"{{{ATOM}}}category", term=version.category, scheme=ARXIV)
    return element


def error_feed(arxiv_id: str) -> bytes:
    """What arXiv answers, with a 400, to an id of the wrong shape."""
    element = ElementTree.Element(f"{{{ATOM}}}entry")
    ElementTree.SubElement(
        element, f"{{{ATOM}}}id"
    ).text = f"http://arxiv.org/api/errors#incorrect_id_format_for_{arxiv_id}"
    ElementTree.SubElement(element, f"{{{ATOM}}}title").text = "Error"
    ElementTree.SubElement(
        element, f"{{{ATOM}}}summary"
    ).text = f"incorrect id format for {arxiv_id}"
    return feed([element])


def now() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
