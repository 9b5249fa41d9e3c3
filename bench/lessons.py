"""Benchmark the lesson pages against the trivial view on a filled database.

1. Drop and recreate the bench database named by DATABASE_URL, migrate it and
   fill it with 10,000 lessons over 30 topics and 50,000 edges.
2. Start gunicorn with two sync workers on a free port of 127.0.0.1.
3. After a warm-up, request every endpoint once per round, in a shuffled
   order, round after round, so that noise on the machine falls on all of
   them alike.
4. Print p50 and p95 per endpoint with their ratios to the trivial view, the
   verdict on the lesson page target, and the database queries each page
   makes.

Run it with ``make bench``. It measures and does not fail when the target is
missed; it exits non-zero only when the setup fails.
"""

# Django has to be configured before the app's modules are imported, so most
# imports come after the setup block below.
# ruff: noqa: E402

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on the path, where this very file
# would shadow the lessons app.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lessongraph_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The in-process query counts should see what the server runs.
os.environ["DJANGO_ENV"] = "development"
os.environ["DEBUG"] = "false"

import django

from bench.server import (
    SetupFailed,
    database_reset,
    free_port,
    log_tail,
    server_start,
    server_stop,
    server_wait,
)

django.setup()

import hashlib
import http.client
import itertools
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.core.management import call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.text import slugify

from lessons.markdown import render_markdown
from lessons.models import Edge, Lesson, LessonTag, Tag, Topic

SEED = 402
LESSON_COUNT = 10_000
EDGE_COUNT = 50_000
BATCH_SIZE = 2_000
SAMPLE_SIZE = 50
WARMUP_ROUNDS = 20
BENCH_CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/11")
# Workers take connections at random; after 8 visits each of two has seen a
# page with a probability above 99%.
WARM_VISITS = 8
REQUESTS_PER_ENDPOINT = 300
QUERY_COUNT_PAGES = 10
TARGET_RATIO = 3.0
SEARCH_WORD = "replication"
TOPIC_FILTER = "databases"

# Every topic with the subjects its lessons are about. Roots come before
# their children.
TOPIC_SUBJECTS: dict[str, tuple[str, ...]] = {
    "containers": ("container images", "image layers", "OCI manifests", "runtimes"),
    "containers/builds": ("multi-stage builds", "build caches", "daemonless builds"),
    "containers/registries": ("image digests", "registry mirrors", "tag immutability"),
    "containers/runtime": ("rootless containers", "cgroups", "seccomp profiles"),
    "security": ("threat models", "least privilege", "secret rotation", "audit logs"),
    "security/ci-cd": ("pipeline secrets", "build provenance", "runner isolation"),
    "security/identity": ("passkeys", "WebAuthn ceremonies", "session tokens"),
    "security/supply-chain": ("SBOMs", "dependency pinning", "signature checks"),
    "payments": ("payment receipts", "idempotency keys", "refund flows"),
    "payments/x402": ("HTTP 402 responses", "payment facilitators", "exact payments"),
    "payments/stablecoins": ("EIP-3009 transfers", "token decimals", "settlement"),
    "python": ("generators", "type hints", "context managers", "packaging"),
    "python/async": ("asyncio tasks", "event loops", "cancellation"),
    "python/performance": ("profiling", "memory allocation", "startup time"),
    "python/testing": ("pytest fixtures", "property-based tests", "test factories"),
    "databases": ("indexes", "query plans", "transactions", "connection pools"),
    "databases/migrations": ("zero-downtime migrations", "backfills", "index builds"),
    "databases/postgresql": ("replication", "vacuum", "partial indexes", "locks"),
    "web": ("HTTP caching", "content negotiation", "CSRF protection", "cookies"),
    "web/apis": ("pagination", "API versioning", "rate limits", "OpenAPI schemas"),
    "web/django": ("Django querysets", "Django middleware", "Django templates"),
    "networking": ("TCP handshakes", "DNS resolution", "TLS certificates"),
    "networking/http": ("HTTP/2 streams", "keep-alive connections", "proxies"),
    "observability": ("structured logs", "metrics", "distributed traces"),
    "observability/slos": ("error budgets", "latency percentiles", "burn-rate alerts"),
    "distributed-systems": ("consensus", "leader election", "clock skew"),
    "distributed-systems/queues": ("Celery workers", "dead-letter queues", "retries"),
    "graphs": ("directed graphs", "graph storage", "graph queries"),
    "graphs/algorithms": ("topological sorts", "shortest paths", "cycle detection"),
    "graphs/learning-paths": ("prerequisite chains", "learning paths", "curricula"),
}

TITLE_PATTERNS = (
    "{Subject} from first principles",
    "A practical guide to {subject}",
    "Debugging {subject} in production",
    "{Subject}: the mistakes everyone makes once",
    "Testing {subject} without mocks",
    "{Subject} at scale",
    "Securing {subject}",
    "Measuring {subject}",
    "{Subject} compared with the alternatives",
    "Moving a legacy system to {subject}",
    "What the manuals leave out about {subject}",
    "{Subject} in ten minutes",
)

SUMMARY_PATTERNS = (
    "A hands-on look at {subject}: the moving parts, one worked example and "
    "the questions to ask in review.",
    "Where {subject} fit in a real service, what breaks first under load, and "
    "how to notice before your users do.",
    "The vocabulary of {subject}, explained with a short example you can run "
    "on a laptop in a few minutes.",
    "Common failure modes around {subject}, with the checks and defaults that "
    "prevent most of them.",
)

PARAGRAPHS = (
    "Start with the smallest version of the problem that still shows the "
    "behaviour you care about. A toy setup that runs in a second on a laptop "
    "teaches more than a full environment that takes an afternoon to stand "
    "up, because you can change one thing, run it again and see exactly what "
    "moved.",
    "Most trouble in this area comes from an assumption that held in "
    "development and quietly stopped holding in production: a single process "
    "became several, a clock drifted, a network call that always answered "
    "began to time out. Write the assumption down next to the code that "
    "relies on it, so the next reader can check it.",
    "Measure before you change anything. Record the numbers you start from, "
    "the command you ran and the machine you ran it on. A change that feels "
    "faster but cannot be shown to be faster is a change you will have to "
    "defend later without evidence, and by then nobody remembers the "
    "baseline.",
    "The example below is deliberately short. It leaves out configuration, "
    "error handling and logging so that the one idea it illustrates stays "
    "visible. Treat it as a sketch to adapt rather than code to paste: the "
    "names, limits and timeouts of a real service depend on its traffic and "
    "on the ways it fails.",
    "When something fails, read the whole error before searching for it. The "
    "first line says what went wrong; the lines after it usually say where, "
    "and the last line often says why. Keep the exact text in the incident "
    "notes, since a paraphrase loses the detail that makes it searchable.",
    "Review is where most of these mistakes are caught cheaply. Ask what "
    "happens when the operation runs twice, when it runs halfway and stops, "
    "and when two copies run at the same moment. If the answer to any of the "
    "three is not obvious from the code, the code needs a comment or a test "
    "that makes it so.",
    "Defaults deserve suspicion. A library picks defaults that are safe for "
    "the widest range of users, which rarely means right for yours. Go "
    "through the settings that touch timeouts, retries, pool sizes and "
    "limits, and set each one on purpose, with a note saying why that value "
    "was chosen.",
    "Finally, leave the system easier to operate than you found it. A "
    "dashboard that shows the one number that matters, a runbook entry with "
    "the command to run at three in the morning, and an alert that fires "
    "before users notice are worth more than a clever optimisation nobody "
    "can maintain.",
)

CODE_BLOCKS = (
    (
        "python",
        "import time\n\n\n"
        "def with_retries(operation, attempts=5, base_delay=0.2):\n"
        '    """Call operation, waiting longer after each failure."""\n'
        "    for attempt in range(attempts):\n"
        "        try:\n"
        "            return operation()\n"
        "        except ConnectionError:\n"
        "            if attempt == attempts - 1:\n"
        "                raise\n"
        "            time.sleep(base_delay * 2**attempt)\n",
    ),
    (
        "bash",
        "set -euo pipefail\n"
        'digest=$(crane digest "$IMAGE:$TAG")\n'
        'echo "deploying $IMAGE@$digest"\n'
        'kubectl set image deployment/web web="$IMAGE@$digest"\n'
        "kubectl rollout status deployment/web --timeout=120s\n",
    ),
    (
        "sql",
        "EXPLAIN (ANALYZE, BUFFERS)\n"
        "SELECT lesson.id, lesson.title\n"
        "FROM lessons_lesson AS lesson\n"
        "JOIN lessons_edge AS edge ON edge.target_id = lesson.id\n"
        "WHERE edge.source_id = 42 AND edge.kind = 'prerequisite'\n"
        "ORDER BY lesson.title;\n",
    ),
)

CHECKLIST = (
    "- Write down the assumption the code depends on.\n"
    "- Measure before and after, on the same machine.\n"
    "- Run the operation twice and check that the result is the same.\n"
    "- Set timeouts and limits on purpose, and say why.\n"
)

BODY_VARIANTS = 6

GENERAL_TAGS = (
    "beginner-friendly", "hands-on", "reference", "deep-dive", "checklist",
    "case-study", "performance", "reliability", "tooling", "linux", "docker",
    "kubernetes", "postgresql", "http", "ci", "debugging", "design", "operations",
)  # fmt: skip

EDGE_NOTES = (
    "Read this first for the vocabulary.",
    "Covers the same ground from the operations side.",
    "The worked example builds on this setup.",
    "See its section on failure modes.",
)

PRICES = (Decimal("0.001"), Decimal("0.005"), Decimal("0.01"), Decimal("0.05"))


@dataclass(frozen=True)
class Endpoint:
    name: str
    urls: list[str]


@dataclass(frozen=True)
class Figures:
    endpoint: Endpoint
    timings_ms: list[float]

    def percentile(self, rank: int) -> float:
        cuts = statistics.quantiles(self.timings_ms, n=100, method="inclusive")
        return cuts[rank - 1]


def main() -> int:
    try:
        bench(random.Random(SEED), os.environ["DATABASE_URL"])
    except SetupFailed as error:
        print(f"bench: setup failed: {error}", file=sys.stderr)
        return 1
    return 0


def bench(rng: random.Random, database_url: str) -> None:
    started = time.monotonic()
    database_reset(database_url)
    try:
        call_command("migrate", verbosity=0, interactive=False)
        sample = database_fill(rng)
    except DatabaseError as error:
        raise SetupFailed(f"cannot fill the bench database: {error}") from error
    print(f"Filled the bench database in {time.monotonic() - started:.1f} s.")

    first_views = first_view_sample(rng, sample)
    endpoints = bench_endpoints(sample, first_views)
    port = free_port()
    with tempfile.TemporaryFile() as server_log:
        server = server_start(port, database_url, BENCH_CACHE_URL, server_log)
        try:
            server_wait(server, port, server_log)
            try:
                figures = measure(port, endpoints, rng)
            except SetupFailed as error:
                raise SetupFailed(f"{error}\n{log_tail(server_log)}") from error
        finally:
            server_stop(server)
    report_timings(figures)
    report_queries(endpoints[1:])


def database_fill(rng: random.Random) -> list[Lesson]:
    """Fill the fresh database; return a sample of lessons of typical degree."""
    topics = topics_create()
    bodies = body_variants()
    lessons = lessons_create(rng, topics, bodies)
    lesson_tags_create(rng, lessons)
    pairs = edges_create(rng, lessons)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"{len(lessons)} lessons in {len(topics)} topics, {len(pairs)} edges, "
        f"{Tag.objects.count()} tags on {LessonTag.objects.count()} lesson tags."
    )
    return typical_sample(rng, lessons, pairs)


def topics_create() -> list[Topic]:
    topics: dict[str, Topic] = {}
    for path in TOPIC_SUBJECTS:
        parent_path, _, _name = path.rpartition("/")
        topics[path] = Topic.objects.create(
            path=path,
            parent=topics[parent_path] if parent_path else None,
            description=f"Lessons about {path.rsplit('/', 1)[-1]}.",
        )
    return list(topics.values())


def body_variants() -> list[tuple[str, str, str]]:
    """A few Markdown bodies of a few hundred words, each with a code block,
    as (body, body_html, body_sha256). bulk_create skips Lesson.save(), which
    would render them, so they are rendered here once each."""
    variants = []
    for index in range(BODY_VARIANTS):
        language, code = CODE_BLOCKS[index % len(CODE_BLOCKS)]
        paragraph = PARAGRAPHS[index:] + PARAGRAPHS[:index]
        body = (
            f"## Why it matters\n\n{paragraph[0]}\n\n{paragraph[1]}\n\n"
            f"## A worked example\n\n{paragraph[2]}\n\n"
            f"```{language}\n{code}```\n\n"
            f"## What goes wrong\n\n{paragraph[3]}\n\n{paragraph[4]}\n\n"
            f"{paragraph[5]}\n\n## Checklist\n\n{CHECKLIST}"
        )
        variants.append(
            (body, render_markdown(body), hashlib.sha256(body.encode()).hexdigest())
        )
    return variants


def lessons_create(
    rng: random.Random, topics: list[Topic], bodies: list[tuple[str, str, str]]
) -> list[Lesson]:
    seen_titles: Counter[str] = Counter()
    seen_slugs: set[str] = set()
    oldest = timezone.now() - timedelta(minutes=37 * LESSON_COUNT)
    lessons = []
    for index in range(LESSON_COUNT):
        topic = rng.choice(topics)
        subject = rng.choice(TOPIC_SUBJECTS[topic.path])
        title = rng.choice(TITLE_PATTERNS).format(
            subject=subject, Subject=subject[0].upper() + subject[1:]
        )
        seen_titles[title] += 1
        if seen_titles[title] > 1:
            title = f"{title}, part {seen_titles[title]}"
        slug = slugify(title)[:100]
        if slug in seen_slugs:
            slug = f"{slug}-{index}"
        seen_slugs.add(slug)
        body, body_html, body_sha256 = rng.choice(bodies)
        price = rng.choice(PRICES) if rng.random() < 0.5 else None
        lessons.append(
            Lesson(
                slug=slug,
                title=title,
                summary=rng.choice(SUMMARY_PATTERNS).format(subject=subject),
                body=body,
                body_html=body_html,
                body_sha256=body_sha256,
                depth=rng.choices(range(1, 6), weights=(25, 30, 25, 12, 8))[0],
                price=price,
                gated=price is not None and rng.random() < 0.5,
                topic=topic,
                created=oldest + timedelta(minutes=37 * index),
            )
        )
    # PostgreSQL hands back the new ids in order, so a lower id is an older
    # lesson; the edges below rely on that.
    return Lesson.objects.bulk_create(lessons, batch_size=BATCH_SIZE)


def lesson_tags_create(rng: random.Random, lessons: list[Lesson]) -> None:
    names = {path.rsplit("/", 1)[-1] for path in TOPIC_SUBJECTS} | set(GENERAL_TAGS)
    tags = {
        tag.name: tag
        for tag in Tag.objects.bulk_create([Tag(name=name) for name in sorted(names)])
    }
    rows = []
    for lesson in lessons:
        chosen = []
        if rng.random() < 0.8:
            chosen.append(lesson.topic.name)
        chosen += rng.sample(GENERAL_TAGS, rng.randint(0, 3))
        rows += [
            LessonTag(lesson=lesson, tag=tags[name], position=position)
            for position, name in enumerate(dict.fromkeys(chosen))
        ]
    LessonTag.objects.bulk_create(rows, batch_size=BATCH_SIZE)


def edges_create(rng: random.Random, lessons: list[Lesson]) -> set[tuple[int, int]]:
    """Link lessons as (newer, older) pairs, most often within a topic.

    Every edge points from a lesson to an older one, which keeps the
    prerequisite edges acyclic. One edge per pair of lessons rules out
    duplicates and related links in both directions.
    """
    by_topic: dict[int, list[int]] = {}
    place_in_topic = []
    for index, lesson in enumerate(lessons):
        same_topic = by_topic.setdefault(lesson.topic_id, [])
        place_in_topic.append(len(same_topic))
        same_topic.append(index)

    pairs: set[tuple[int, int]] = set()
    while len(pairs) < EDGE_COUNT:
        newer = rng.randrange(1, len(lessons))
        place = place_in_topic[newer]
        # The first lesson of a topic has nobody older in it to point to.
        if place and rng.random() < 0.7:
            older = by_topic[lessons[newer].topic_id][rng.randrange(place)]
        else:
            older = rng.randrange(newer)
        pairs.add((newer, older))

    kinds = (Edge.Kind.PREREQUISITE, Edge.Kind.EXTENDS, Edge.Kind.RELATED)
    edges = [
        Edge(
            source=lessons[newer],
            target=lessons[older],
            kind=rng.choices(kinds, weights=(45, 20, 35))[0],
            note=rng.choice(EDGE_NOTES) if rng.random() < 0.2 else "",
        )
        for newer, older in sorted(pairs)
    ]
    Edge.objects.bulk_create(edges, batch_size=BATCH_SIZE)
    return pairs


def typical_sample(
    rng: random.Random, lessons: list[Lesson], pairs: set[tuple[int, int]]
) -> list[Lesson]:
    """Lessons whose number of edges is the median, widening to the nearest
    degrees until there are enough of them."""
    degree = Counter(itertools.chain.from_iterable(pairs))
    median = statistics.median_low(degree[index] for index in range(len(lessons)))
    for spread in itertools.count():
        candidates = [
            lesson
            for index, lesson in enumerate(lessons)
            if abs(degree[index] - median) <= spread
        ]
        if len(candidates) >= SAMPLE_SIZE:
            break
    print(
        f"Lesson sample: {SAMPLE_SIZE} lessons with {median}±{spread} edges "
        f"(degree ranges {min(degree.values())}-{max(degree.values())})."
    )
    return rng.sample(candidates, SAMPLE_SIZE)


def first_view_sample(rng: random.Random, sample: list[Lesson]) -> list[str]:
    """Slugs of lessons outside the sample, one for every request, so that
    each of these views finds nothing cached."""
    taken = {lesson.pk for lesson in sample}
    others = list(Lesson.objects.exclude(pk__in=taken).values_list("slug", flat=True))
    return rng.sample(others, WARMUP_ROUNDS + REQUESTS_PER_ENDPOINT)


def bench_endpoints(sample: list[Lesson], first_views: list[str]) -> list[Endpoint]:
    """The baseline first, then the pages it is compared with."""
    slugs = [lesson.slug for lesson in sample]
    return [
        Endpoint("trivial /health/live", ["/health/live"]),
        Endpoint("lesson page", [f"/lessons/{slug}/" for slug in slugs]),
        Endpoint(
            "lesson page, first view", [f"/lessons/{slug}/" for slug in first_views]
        ),
        Endpoint(
            "neighbourhood API depth 1",
            [f"/api/lessons/{slug}/neighborhood" for slug in slugs],
        ),
        Endpoint(
            "neighbourhood API depth 2",
            [f"/api/lessons/{slug}/neighborhood?depth=2" for slug in slugs],
        ),
        Endpoint("catalogue /", ["/"]),
        Endpoint(
            f"catalogue ?search={SEARCH_WORD}",
            ["/?" + urlencode({"search": SEARCH_WORD})],
        ),
        Endpoint(
            f"catalogue ?topic={TOPIC_FILTER}",
            ["/?" + urlencode({"topic": TOPIC_FILTER})],
        ),
    ]


def measure(port: int, endpoints: list[Endpoint], rng: random.Random) -> list[Figures]:
    """Time sequential GETs from one client, one per endpoint per round."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    timings: dict[str, list[float]] = {endpoint.name: [] for endpoint in endpoints}
    order = list(endpoints)
    try:
        warm_lesson_pages(client, endpoints)
        for round_number in range(-WARMUP_ROUNDS, REQUESTS_PER_ENDPOINT):
            rng.shuffle(order)
            for endpoint in order:
                url = endpoint.urls[round_number % len(endpoint.urls)]
                elapsed = timed_get(client, url)
                if round_number >= 0:
                    timings[endpoint.name].append(elapsed)
    finally:
        client.close()
    return [Figures(endpoint, timings[endpoint.name]) for endpoint in endpoints]


def warm_lesson_pages(
    client: http.client.HTTPConnection, endpoints: list[Endpoint]
) -> None:
    """Visit each sampled lesson page often enough that every gunicorn
    worker has cached it: the "lesson page" row measures a site in use,
    the "first view" row what an uncached page costs."""
    pages = next(endpoint for endpoint in endpoints if endpoint.name == "lesson page")
    for url in pages.urls:
        for _visit in range(WARM_VISITS):
            timed_get(client, url)


def timed_get(client: http.client.HTTPConnection, url: str) -> float:
    """Milliseconds from sending the request to reading the whole answer.

    gunicorn's sync workers close the connection after every answer, so each
    request opens a new one; that cost is the same for every endpoint.
    """
    for attempt in range(2):
        started = time.perf_counter()
        try:
            client.request("GET", url)
            response = client.getresponse()
            content = response.read()
        except (http.client.RemoteDisconnected, ConnectionError) as error:
            client.close()
            if attempt:
                raise SetupFailed(f"GET {url} failed: {error}") from error
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SetupFailed(
                f"GET {url} answered {response.status}: {content[:300]!r}"
            )
        return elapsed
    raise AssertionError("unreachable")


def report_timings(figures: list[Figures]) -> None:
    baseline = figures[0]
    base_p50, base_p95 = baseline.percentile(50), baseline.percentile(95)
    width = max(len(row.endpoint.name) for row in figures)
    print()
    print(
        f"{'endpoint':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p95 ms':>8}  "
        f"{'p50 ratio':>9}  {'p95 ratio':>9}"
    )
    for row in figures:
        p50, p95 = row.percentile(50), row.percentile(95)
        print(
            f"{row.endpoint.name:<{width}}  {len(row.timings_ms):>4}  {p50:>8.2f}  "
            f"{p95:>8.2f}  {p50 / base_p50:>9.2f}  {p95 / base_p95:>9.2f}"
        )

    lesson_page = next(row for row in figures if row.endpoint.name == "lesson page")
    ratio = lesson_page.percentile(95) / base_p95
    verdict = "MET" if ratio <= TARGET_RATIO else "NOT MET"
    print()
    print(
        f'Target "lesson page p95 within {TARGET_RATIO:g}x the trivial view": '
        f"{verdict} (ratio {ratio:.2f})"
    )


def report_queries(endpoints: list[Endpoint]) -> None:
    """Count the queries of each page in-process, against the same database."""
    client = Client(headers={"host": "127.0.0.1"})
    print()
    print(f"Database queries per request (over up to {QUERY_COUNT_PAGES} pages):")
    for endpoint in endpoints:
        counts = sorted(
            query_count(client, url) for url in endpoint.urls[:QUERY_COUNT_PAGES]
        )
        spread = (
            str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"
        )
        print(f"  {endpoint.name}: {spread}")


def query_count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    if response.status_code != 200:
        raise SetupFailed(f"in-process GET {url} answered {response.status_code}")
    return len(queries)


if __name__ == "__main__":
    sys.exit(main())
