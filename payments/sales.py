"""What instructors sold: sales, revenue and sales per day, per lesson.

Everything is counted and summed by the database, grouped by lesson (and
by asset, or by day), so that the number of queries stays the same however
many purchases there are; on SQLite, which sums in 64 bits, revenue is
read in the same one query and summed here. Revenue is summed in the token's smallest unit
and only then written in whole tokens, with the token's own exact
conversion (payments/token.py).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import User
from lessons.models import Lesson
from payments.models import Purchase
from payments.offers import offers_configured
from payments.token import Token

CHART_DAYS = 30

# The chart's geometry, in SVG user units.
CHART_BAR_WIDTH = 16
CHART_BAR_GAP = 6
CHART_MARGIN_X = 12
CHART_TOP = 22  # room for the count above the tallest bar
CHART_PLOT_HEIGHT = 120
CHART_LABEL_HEIGHT = 30  # room for the day numbers under the axis


def token_of(*, network: str, asset: str) -> Token | None:
    """The configured token a purchase was paid in; None for one settled in
    a token the site no longer offers."""
    for offer in offers_configured():
        token = offer.token
        if (token.network, token.address.lower()) == (network, asset.lower()):
            return token
    return None


@dataclass(frozen=True)
class Amount:
    """A sum of one asset, exact: ``units`` in the token's smallest unit."""

    network: str
    asset: str
    units: int
    token: Token | None

    @property
    def symbol(self) -> str | None:
        return self.token.symbol if self.token else None

    @property
    def decimal(self) -> str | None:
        """Whole tokens as a plain decimal string (``"0.015"``); None when
        the token is not known, and so neither are its decimals."""
        if self.token is None:
            return None
        return self.token.text_from_units(self.units).removesuffix(
            f" {self.token.symbol}"
        )

    @property
    def text(self) -> str:
        if self.token is None:
            return f"{self.units} units of {self.asset} on {self.network}"
        return self.token.text_from_units(self.units)


@dataclass(frozen=True)
class Bar:
    day: date
    sales: int
    x: float
    y: float
    height: float

    width: float = CHART_BAR_WIDTH

    @property
    def label_x(self) -> float:
        return self.x + self.width / 2

    @property
    def count_y(self) -> float:
        return self.y - 4


@dataclass(frozen=True)
class Chart:
    """Sales per day, one bar a day, oldest on the left; days without sales
    are bars of height 0."""

    bars: list[Bar]
    width: float
    height: float
    baseline: float
    total: int

    @property
    def middle_x(self) -> float:
        return self.width / 2

    @property
    def middle_y(self) -> float:
        return self.baseline / 2

    @property
    def date_y(self) -> float:
        return self.baseline + 13

    @property
    def month_y(self) -> float:
        return self.baseline + 25

    @property
    def first(self) -> date:
        return self.bars[0].day

    @property
    def last(self) -> date:
        return self.bars[-1].day


@dataclass
class LessonSales:
    lesson: Lesson
    sales: int = 0
    revenue: list[Amount] = field(default_factory=list)
    per_day: dict[date, int] = field(default_factory=dict)

    def chart(self, days: list[date]) -> Chart:
        return chart_layout([(day, self.per_day.get(day, 0)) for day in days])


@dataclass(frozen=True)
class SalesReport:
    days: list[date]
    lessons: list[LessonSales]

    @property
    def sales(self) -> int:
        return sum(row.sales for row in self.lessons)

    def chart(self) -> Chart:
        """Every lesson's sales together."""
        per_day: defaultdict[date, int] = defaultdict(int)
        for row in self.lessons:
            for day, sales in row.per_day.items():
                per_day[day] += sales
        return chart_layout([(day, per_day[day]) for day in self.days])

    def charts(self) -> list[tuple[LessonSales, Chart]]:
        return [(row, row.chart(self.days)) for row in self.lessons]


def lessons_reported_to(user: User) -> QuerySet[Lesson]:
    """The lessons whose sales ``user`` may see: staff see every lesson,
    instructors their own. Of those, the ones that are sold or were sold:
    a free lesson that never sold has nothing to report."""
    lessons = Lesson.objects.all()
    if user.role != User.Role.STAFF:
        lessons = lessons.filter(author=user)
    return lessons.filter(
        Q(gated=True) | Q(pk__in=Purchase.objects.values("lesson_id"))
    ).order_by("title", "pk")


def sales_report(*, user: User, today: date | None = None) -> SalesReport:
    """Sales of the lessons ``user`` may see, in three queries.

    1. The lessons (see ``lessons_reported_to``).
    2. Per lesson and asset: the number of sales and the sum of amounts.
    3. Per lesson and day, for the last ``CHART_DAYS`` days up to ``today``
       (in the site's time zone): the number of sales.
    """
    today = today or timezone.localdate()
    days = [today - timedelta(days=back) for back in range(CHART_DAYS - 1, -1, -1)]
    lessons = list(lessons_reported_to(user))
    rows = {lesson.pk: LessonSales(lesson=lesson) for lesson in lessons}
    purchases = Purchase.objects.filter(lesson__in=[lesson.pk for lesson in lessons])

    for lesson_id, network, asset, sales, units in _revenue_totals(purchases):
        row = rows[lesson_id]
        row.sales += sales
        row.revenue.append(
            Amount(
                network=network,
                asset=asset,
                units=units,
                token=token_of(network=network, asset=asset),
            )
        )

    start = timezone.make_aware(datetime.combine(days[0], time.min))
    per_day = (
        purchases.filter(created__gte=start)
        .annotate(day=TruncDate("created"))
        .order_by()
        .values("lesson_id", "day")
        .annotate(sales=Count("pk"))
    )
    for count in per_day:
        if count["day"] <= today:
            rows[count["lesson_id"]].per_day[count["day"]] = count["sales"]

    return SalesReport(days=days, lessons=list(rows.values()))


def _revenue_totals(
    purchases: QuerySet[Purchase],
) -> list[tuple[int, str, str, int, int]]:
    """Per lesson and asset: the lesson's id, the network, the asset, the
    number of sales and their amounts summed, in one query.

    PostgreSQL sums NUMERIC exactly. SQLite sums integers in 64 bits and
    fails with "integer overflow" once a lesson has earned about 9.2 tokens
    of 18 decimals, so there the amounts are read and summed here, where
    integers are exact: the development default serves a few sales, not
    millions.
    """
    if connection.vendor != "sqlite":
        totals = (
            purchases.order_by()
            .values("lesson_id", "network", "asset")
            .annotate(sales=Count("pk"), revenue_units=Sum("amount"))
            .order_by("lesson_id", "network", "asset")
        )
        return [
            (
                total["lesson_id"],
                total["network"],
                total["asset"],
                total["sales"],
                int(total["revenue_units"]),
            )
            for total in totals
        ]

    summed: defaultdict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    rows = purchases.order_by().values_list("lesson_id", "network", "asset", "amount")
    for lesson_id, network, asset, amount in rows.iterator():
        total = summed[lesson_id, network, asset]
        total[0] += 1
        total[1] += int(amount)
    return [(*key, sales, units) for key, (sales, units) in sorted(summed.items())]


def chart_layout(counts: list[tuple[date, int]]) -> Chart:
    """Bars scaled so that the busiest day fills the plot."""
    busiest = max((sales for _day, sales in counts), default=0)
    baseline = CHART_TOP + CHART_PLOT_HEIGHT
    bars = []
    for index, (day, sales) in enumerate(counts):
        height = round(CHART_PLOT_HEIGHT * sales / busiest, 1) if busiest else 0.0
        bars.append(
            Bar(
                day=day,
                sales=sales,
                x=CHART_MARGIN_X + index * (CHART_BAR_WIDTH + CHART_BAR_GAP),
                y=round(baseline - height, 1),
                height=height,
            )
        )
    width = 2 * CHART_MARGIN_X + len(counts) * (CHART_BAR_WIDTH + CHART_BAR_GAP)
    return Chart(
        bars=bars,
        width=width - CHART_BAR_GAP,
        height=baseline + CHART_LABEL_HEIGHT,
        baseline=baseline,
        total=sum(sales for _day, sales in counts),
    )
