"""Receipt pages, and the sales instructors see as a page and as JSON."""

import json
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from accounts.models import ApiToken, User
from payments.models import Purchase
from tests.conftest import ROOT
from tests.lessons.factories import LessonFactory
from tests.payments.factories import PRICE
from tests.processes import embedded_environment

pytestmark = pytest.mark.django_db

# One SVG bar: the day, its count and the bar's height.
BAR_RE = re.compile(
    r'<g class="day" data-day="(?P<day>[0-9-]+)" data-sales="(?P<sales>\d+)">'
    r'.*?<rect class="bar" [^>]*height="(?P<height>[0-9.]+)"',
    re.DOTALL,
)


def account(role: str, name: str | None = None) -> User:
    return User.objects.create(
        username=name or f"{role}-{secrets.token_hex(3)}", role=role
    )


def sale(lesson, *, token, units: int = PRICE, days_ago: int = 0, **changes):
    fields = {
        "transaction": "0x" + secrets.token_hex(32),
        "lesson": lesson,
        "payer": "0x" + "11" * 20,
        "payee": "0x" + "22" * 20,
        "amount": units,
        "asset": token.address,
        "network": token.network,
        "created": timezone.now() - timedelta(days=days_ago),
    }
    return Purchase.objects.create(**{**fields, **changes})


def bars_of(html: str, slug: str) -> list[tuple[str, int, float]]:
    start = html.index(f'aria-labelledby="sales-chart-{slug}-title')
    chart = html[start : html.index("</svg>", start)]
    return [
        (match["day"], int(match["sales"]), float(match["height"]))
        for match in BAR_RE.finditer(chart)
    ]


@pytest.fixture
def instructor() -> User:
    return account(User.Role.INSTRUCTOR, "Grace")


# Receipts -------------------------------------------------------------------


def test_receipt_page_shows_the_sale(client, lesson, token):
    purchase = sale(lesson, token=token)

    response = client.get(f"/sales/receipts/{purchase.transaction}/")

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for shown in [
        lesson.title,
        "0.005 AIN",
        str(PRICE),
        token.address,
        token.network,
        purchase.payer,
        purchase.payee,
        purchase.transaction,
        purchase.created.isoformat(),
        f"/api/purchases/{purchase.transaction}",
    ]:
        assert shown in page


def test_receipt_page_is_never_cached(client, lesson, token):
    purchase = sale(lesson, token=token)

    response = client.get(f"/sales/receipts/{purchase.transaction}/")

    assert "no-store" in response["Cache-Control"]


def test_receipt_page_of_an_unknown_sale_is_not_found(client):
    response = client.get(f"/sales/receipts/0x{'ab' * 32}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert (
        f"There is no purchase &#x27;0x{'ab' * 32}&#x27;." in response.content.decode()
    )


@pytest.mark.parametrize("where", ["/sales/receipts/{}/", "/api/purchases/{}"])
@pytest.mark.parametrize("transaction", ["%00", "0x%00ab", "a" * 500])
def test_receipt_of_an_id_no_sale_can_have_is_not_found(client, where, transaction):
    # PostgreSQL refuses a NUL in a query: this was a 500.
    response = client.get(where.format(transaction))

    assert response.status_code == HTTPStatus.NOT_FOUND


# Who sees sales -------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/sales/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/signin/?next=%2Fsales%2F"


def test_learners_are_refused_with_a_reason(client):
    client.force_login(account(User.Role.LEARNER))

    response = client.get("/sales/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "Sales are shown to instructors and staff" in response.content.decode()


def test_instructors_see_only_their_own_lessons(client, instructor, token):
    own = LessonFactory(priced=True, author=instructor, title="Grace's lesson")
    other = LessonFactory(
        priced=True, author=account(User.Role.INSTRUCTOR), title="Someone else's"
    )
    sale(own, token=token)
    sale(other, token=token)
    client.force_login(instructor)

    page = client.get("/sales/").content.decode()

    assert "Grace&#x27;s lesson" in page
    assert "Someone else" not in page


def test_staff_see_every_sold_lesson(client, token):
    first = LessonFactory(priced=True, author=account(User.Role.INSTRUCTOR))
    second = LessonFactory(priced=True, author=None)
    sale(first, token=token)
    client.force_login(account(User.Role.STAFF))

    page = client.get("/sales/").content.decode()

    assert first.title in page
    assert second.title in page


# The numbers ----------------------------------------------------------------


def test_revenue_is_summed_exactly(client, instructor, token):
    lesson = LessonFactory(priced=True, author=instructor)
    for _ in range(3):
        sale(lesson, token=token)
    client.force_login(instructor)

    page = client.get("/sales/").content.decode()

    assert "0.015 AIN" in page
    assert "3 sales" in page


def test_revenue_keeps_the_smallest_unit(client, instructor, token):
    # Past 2**53, where a floating-point sum would lose the last unit.
    lesson = LessonFactory(priced=True, author=instructor)
    sale(lesson, token=token, units=10**18 + 1)
    sale(lesson, token=token, units=10**18 + 1)
    client.force_login(instructor)

    body = client.get("/sales/lessons.json").json()

    (revenue,) = body["lessons"][0]["revenue"]
    assert revenue["units"] == str(2 * 10**18 + 2)
    assert revenue["amount"] == "2.000000000000000002"


def test_the_chart_has_a_bar_for_every_day(client, instructor, token):
    lesson = LessonFactory(priced=True, author=instructor)
    sale(lesson, token=token, days_ago=1)
    sale(lesson, token=token, days_ago=1)
    sale(lesson, token=token, days_ago=3)
    sale(lesson, token=token, days_ago=40)  # before the chart's days
    client.force_login(instructor)

    page = client.get("/sales/").content.decode()

    bars = bars_of(page, lesson.slug)
    today = timezone.localdate()
    assert [day for day, _sales, _height in bars] == [
        (today - timedelta(days=back)).isoformat() for back in range(29, -1, -1)
    ]
    by_day = {day: (sales, height) for day, sales, height in bars}
    assert by_day[(today - timedelta(days=1)).isoformat()] == (2, 120.0)
    assert by_day[(today - timedelta(days=3)).isoformat()] == (1, 60.0)
    assert by_day[today.isoformat()] == (0, 0.0)
    assert sum(sales for _day, sales, _height in bars) == 3


def test_the_chart_says_what_it_shows(client, instructor, token):
    lesson = LessonFactory(priced=True, author=instructor, title="Signals")
    sale(lesson, token=token, days_ago=1)
    sale(lesson, token=token, days_ago=1)
    client.force_login(instructor)

    page = client.get("/sales/").content.decode()

    day = (timezone.localdate() - timedelta(days=1)).strftime("%a %-d %B %Y")
    assert f"<title>{day}: 2 sales</title>" in page
    assert re.search(
        rf'<title id="sales-chart-{lesson.slug}-title">Sales per day of Signals, '
        r"[^<]*: 2 in all</title>",
        page,
    )


@pytest.mark.parametrize("purchases", [1, 40])
def test_the_page_takes_as_many_queries_for_many_sales(
    client, instructor, token, django_assert_num_queries, purchases
):
    for _lesson in range(2):
        lesson = LessonFactory(priced=True, author=instructor)
        for count in range(purchases):
            sale(lesson, token=token, days_ago=count % 35)
    client.force_login(instructor)

    # The session, the account, the lessons, the totals, the days.
    with django_assert_num_queries(5):
        response = client.get("/sales/")

    assert response.status_code == HTTPStatus.OK
    assert f"{purchases} sale" in response.content.decode()


# The same as JSON -----------------------------------------------------------


def test_json_gives_instructors_their_sales(client, instructor, token):
    lesson = LessonFactory(priced=True, author=instructor)
    sale(lesson, token=token, days_ago=1)
    sale(lesson, token=token, days_ago=1)
    client.force_login(instructor)

    body = client.get("/sales/lessons.json").json()

    (row,) = body["lessons"]
    assert row["slug"] == lesson.slug
    assert row["sales"] == 2
    assert row["revenue"] == [
        {
            "network": token.network,
            "asset": token.address,
            "symbol": "AIN",
            "units": str(2 * PRICE),
            "amount": "0.01",
        }
    ]
    assert len(body["days"]) == len(row["sales_per_day"]) == 30
    assert row["sales_per_day"][-2:] == [2, 0]


def test_json_answers_a_bearer_token(client, instructor, token):
    secret = ApiToken.PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=instructor, name="reports", digest=ApiToken.digest_of(secret), hint="lg_"
    )
    sale(LessonFactory(priced=True, author=instructor), token=token)

    response = client.get(
        "/sales/lessons.json", headers={"Authorization": f"Bearer {secret}"}
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json()["lessons"][0]["sales"] == 1


def test_json_refuses_learners(client):
    client.force_login(account(User.Role.LEARNER))

    response = client.get("/sales/lessons.json")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "instructors and staff" in response.json()["detail"]


def test_json_asks_anonymous_programs_for_a_token(client):
    response = client.get("/sales/lessons.json")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_header_offers_sales_to_instructors_only(client):
    from io import StringIO

    from django.core.management import call_command

    from tests.accounts.authenticator import SoftwareAuthenticator
    from tests.accounts.conftest import sign_up

    sign_up(client, SoftwareAuthenticator(), name="Teacher")
    assert 'href="/sales/"' not in client.get("/").content.decode()

    call_command("set_role", "Teacher", "instructor", stdout=StringIO())

    assert 'href="/sales/"' in client.get("/").content.decode()


# Four sales of a 4 AIN lesson on the embedded database, then its sales as
# JSON, as staff: past 2**63 smallest units, which SQLite cannot sum.
SQLITE_SALES = """
import json, secrets
from decimal import Decimal
from django.test import Client
from accounts.models import User
from payments.models import Purchase
from payments.token import token_configured
from tests.lessons.factories import LessonFactory
token = token_configured()
lesson = LessonFactory(slug="costly", price=Decimal("4"), gated=True)
for _ in range(4):
    Purchase.objects.create(
        transaction="0x" + secrets.token_hex(32), lesson=lesson,
        payer="0x" + "11" * 20, payee="0x" + "22" * 20, amount=4 * 10**18,
        asset=token.address, network=token.network,
    )
client = Client(HTTP_HOST="localhost")
client.force_login(User.objects.create(username="Ada", role="staff"))
page = client.get("/sales/")
answer = client.get("/sales/lessons.json")
print(json.dumps([page.status_code, answer.status_code, answer.content.decode()]))
"""


def test_revenue_past_64_bits_is_summed_on_sqlite(tmp_path):
    environment = embedded_environment(tmp_path)
    for command in (["migrate", "--noinput"], ["shell", "-c", SQLITE_SALES]):
        finished = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT, env=environment, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip
        assert finished.returncode == 0, finished.stderr

    page_status, json_status, body = json.loads(finished.stdout.splitlines()[-1])

    assert (page_status, json_status) == (HTTPStatus.OK, HTTPStatus.OK), body
    (row,) = json.loads(body)["lessons"]
    assert row["sales"] == 4
    assert row["revenue"][0]["units"] == str(16 * 10**18)
    assert row["revenue"][0]["amount"] == "16"
