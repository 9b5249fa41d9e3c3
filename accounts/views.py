import json
import logging
from http import HTTPStatus
from typing import Any

from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from rest_framework.request import Request

from accounts import services
from accounts.limits import answers_limited, options_limited
from accounts.models import ApiToken, Passkey, User
from accounts.reauth import (
    account_required,
    mark_session_fresh,
    recent_passkey_required,
)
from config.errors import ApplicationError, wants_json
from payments.selectors import account_holdings

logger = logging.getLogger(__name__)

NEW_TOKEN_SESSION_KEY = "new_api_token"
# A passkey answer is a few kilobytes; nothing a ceremony needs comes near.
MAX_JSON_BYTES = 64 * 1024
BACKEND = "accounts.backends.PasskeyBackend"


def json_body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApplicationError(
            "Send JSON (Content-Type: application/json).",
            status=HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    if len(request.body) > MAX_JSON_BYTES:
        raise ApplicationError(
            "The request body is too large.", status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        )
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        logger.warning("Malformed JSON sent to %s", request.path)
        raise ApplicationError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApplicationError("The request body must be a JSON object.")
    return body


def text_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def credential_from(body: dict[str, Any]) -> dict[str, Any]:
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise ApplicationError("The request needs a 'credential' object.")
    return credential


def session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return str(request.session.session_key)


def safe_next(request: HttpRequest, fallback: str = "/") -> str:
    target = request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def account_of(request: HttpRequest | Request) -> User:
    """The signed-in account (by session or API token); only for views
    behind a sign-in check."""
    assert isinstance(request.user, User)
    return request.user


def sign_in(request: HttpRequest, user: User) -> None:
    login(request, user, backend=BACKEND)
    mark_session_fresh(request)


# Sign-up and sign-in -------------------------------------------------------


@require_safe
def signup_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup.html", {"next": safe_next(request)})


@require_POST
@options_limited
def signup_options(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    display_name = body.get("display_name")
    if not isinstance(display_name, str):
        raise ApplicationError("The request needs a 'display_name' text.")
    options = services.signup_begin(
        display_name=display_name, session_key=session_key(request)
    )
    return JsonResponse(options)


@require_POST
@answers_limited
def signup_verify(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    user = services.signup_complete(
        credential=credential_from(body),
        session_key=session_key(request),
        passkey_name=text_or_empty(body.get("passkey_name")),
    )
    sign_in(request, user)
    return JsonResponse({"redirect": safe_next(request, reverse("accounts:account"))})


@require_safe
def signin_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signin.html", {"next": safe_next(request)})


@require_POST
@options_limited
def signin_options(request: HttpRequest) -> JsonResponse:
    return JsonResponse(services.signin_begin(session_key=session_key(request)))


@require_POST
@answers_limited
def signin_verify(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    user = services.signin_complete(
        credential=credential_from(body), session_key=session_key(request)
    )
    sign_in(request, user)
    return JsonResponse({"redirect": safe_next(request)})


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("lessons:catalogue")


@require_POST
@login_required
def signout_everywhere(request: HttpRequest) -> HttpResponse:
    services.account_sign_out_everywhere(user=account_of(request))
    logout(request)
    messages.success(
        request, "Every session of your account is signed out, this one too."
    )
    return redirect("lessons:catalogue")


# Re-authentication ---------------------------------------------------------


@require_safe
@login_required
def reauthenticate_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/reauthenticate.html",
        {"next": safe_next(request, reverse("accounts:account"))},
    )


@require_POST
@account_required
@options_limited
def reauthenticate_options(request: HttpRequest) -> JsonResponse:
    options = services.reauth_begin(
        user=account_of(request), session_key=session_key(request)
    )
    return JsonResponse(options)


@require_POST
@account_required
@answers_limited
def reauthenticate_verify(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    services.reauth_complete(
        user=account_of(request),
        credential=credential_from(body),
        session_key=session_key(request),
    )
    mark_session_fresh(request)
    messages.info(request, "Passkey confirmed: you can now finish what you started.")
    return JsonResponse({"redirect": safe_next(request, reverse("accounts:account"))})


# The account page: passkeys and API tokens --------------------------------


@require_safe
@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    user = account_of(request)
    return render(
        request,
        "accounts/account.html",
        {
            "passkeys": user.passkeys.all(),
            "tokens": user.api_tokens.filter(revoked__isnull=True),
            "new_token": request.session.pop(NEW_TOKEN_SESSION_KEY, None),
            "holdings": account_holdings(account_id=user.pk),
        },
    )


@require_POST
@recent_passkey_required
@options_limited
def passkey_add_options(request: HttpRequest) -> JsonResponse:
    options = services.passkey_add_begin(
        user=account_of(request), session_key=session_key(request)
    )
    return JsonResponse(options)


@require_POST
@recent_passkey_required
@answers_limited
def passkey_add_verify(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    passkey = services.passkey_add_complete(
        user=account_of(request),
        credential=credential_from(body),
        session_key=session_key(request),
        name=text_or_empty(body.get("name")),
    )
    return JsonResponse(
        {"id": passkey.pk, "name": passkey.name}, status=HTTPStatus.CREATED
    )


@require_POST
@login_required
def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    passkey = get_object_or_404(Passkey, pk=pk, user=account_of(request))
    services.passkey_rename(passkey=passkey, name=request.POST.get("name", ""))
    messages.success(request, f"Passkey renamed to “{passkey.name}”.")
    return redirect("accounts:account")


@require_POST
@recent_passkey_required
def passkey_remove(request: HttpRequest, pk: int) -> HttpResponse:
    user = account_of(request)
    passkey = get_object_or_404(Passkey, pk=pk, user=user)
    try:
        services.passkey_remove(passkey=passkey)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        # Every other session of the account has ended; this one stays.
        user.refresh_from_db()
        update_session_auth_hash(request, user)
        messages.success(
            request,
            f"Passkey “{passkey.name}” removed; every other session of your "
            "account is signed out.",
        )
    return redirect("accounts:account")


@require_POST
@recent_passkey_required
def token_create(request: HttpRequest) -> HttpResponse:
    _token, secret = services.token_create(
        user=account_of(request),
        name=request.POST.get("name", ""),
    )
    # Shown once, on the next page, then gone from the session.
    request.session[NEW_TOKEN_SESSION_KEY] = secret
    return redirect("accounts:account")


@require_POST
@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=account_of(request))
    services.token_revoke(token=token)
    messages.success(request, f"API token “{token.name}” revoked.")
    return redirect("accounts:account")


def rate_limited(request: HttpRequest, exception: Exception) -> HttpResponse:
    logger.warning(
        "Rate limit hit on %s from %s", request.path, request.META.get("REMOTE_ADDR")
    )
    message = "Too many attempts from your address; wait a minute and try again."
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse(
            {"detail": message}, status=HTTPStatus.TOO_MANY_REQUESTS
        )
    else:
        response = render(
            request,
            "error.html",
            {"status": HTTPStatus.TOO_MANY_REQUESTS, "message": message},
            status=HTTPStatus.TOO_MANY_REQUESTS,
        )
    response["Retry-After"] = "60"
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Scripts posting JSON get JSON; pages get Django's page."""
    logger.warning("CSRF refusal on %s: %s", request.path, reason)
    if wants_json(request):
        return JsonResponse(
            {
                "detail": "The page is out of date (CSRF check failed); reload it and try again."
            },
            status=HTTPStatus.FORBIDDEN,
        )
    return django_csrf_failure(request, reason)


def admin_signin(request: HttpRequest) -> HttpResponse:
    """The admin's sign-in is the passkey sign-in; an account that may not
    use the admin is told so instead of being sent round again."""
    if request.user.is_authenticated:
        return render(
            request,
            "error.html",
            {
                "status": HTTPStatus.FORBIDDEN,
                "message": (
                    f"You are signed in as {request.user.get_username()}; the admin "
                    "is for staff and instructors."
                ),
            },
            status=HTTPStatus.FORBIDDEN,
        )
    return redirect(f"{reverse('accounts:signin')}?{request.GET.urlencode()}")
