"""Pages about cited papers.

``GET /papers/<arxiv id>/``: a paper as the site last fetched it from arXiv,
and the lessons citing it with the version each cites.
``GET /citations/``: for instructors, the citations of their lessons (every
lesson, for staff) whose paper was revised or withdrawn since.
"""

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts.models import User
from accounts.reauth import account_required
from accounts.views import account_of
from config.errors import ApplicationError
from lessons import selectors

INSTRUCTORS_ONLY = (
    "The citations report is shown to instructors and staff. Your account is "
    "a learner's; ask the site's staff to make you an instructor if you "
    "author lessons."
)


@require_safe
def paper_detail(request: HttpRequest, arxiv_id: str) -> HttpResponse:
    paper = selectors.paper_get(arxiv_id=arxiv_id)
    if arxiv_id != paper.arxiv_id:
        # A versioned address shows the paper, whose page lists every
        # version cited.
        return redirect(paper)
    return render(
        request,
        "lessons/paper_detail.html",
        {"paper": paper, "citations": selectors.paper_citations(paper=paper)},
    )


@require_safe
@account_required
def citations_report(request: HttpRequest) -> HttpResponse:
    user = account_of(request)
    if not user.is_instructor:
        raise ApplicationError(INSTRUCTORS_ONLY, status=HTTPStatus.FORBIDDEN)
    everyone = user.role == User.Role.STAFF
    citations = selectors.citations_needing_attention(author=None if everyone else user)
    return render(
        request,
        "lessons/citations_report.html",
        {"citations": citations, "everyone": everyone},
    )
