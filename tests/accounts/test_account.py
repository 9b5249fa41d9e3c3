"""Managing passkeys and API tokens, and re-authentication before the
sensitive actions."""

import time
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiToken, Passkey, User
from accounts.reauth import SESSION_KEY
from tests.accounts.authenticator import SoftwareAuthenticator, b64url
from tests.accounts.conftest import post_json, sign_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(client, authenticator) -> User:
    """Signed in just now, so the session is fresh."""
    return sign_up(client, authenticator)


def make_stale(client, settings) -> None:
    session = client.session
    session[SESSION_KEY] = time.time() - settings.ACCOUNTS_REAUTH_SECONDS - 1
    session.save()


def reauthenticate(client, authenticator, **changes):
    options = post_json(client, "/accounts/reauthenticate/options").json()
    credential = authenticator.assertion(options, **changes)
    return post_json(
        client, "/accounts/reauthenticate/verify", {"credential": credential}
    )


def add_passkey(client, second: SoftwareAuthenticator, name: str = "Phone"):
    options = post_json(client, "/accounts/passkeys/options")
    if options.status_code != HTTPStatus.OK:
        return options
    return post_json(
        client,
        "/accounts/passkeys/verify",
        {"credential": second.register(options.json()), "name": name},
    )


def test_account_page_lists_passkeys(client, account):
    page = client.get("/accounts/").content.decode()

    assert "Passkey 1" in page
    assert "Your only passkey" in page


def test_adding_a_second_passkey(client, account):
    response = add_passkey(client, SoftwareAuthenticator())

    assert response.status_code == HTTPStatus.CREATED
    assert list(account.passkeys.values_list("name", flat=True)) == [
        "Passkey 1",
        "Phone",
    ]


def test_add_options_exclude_the_accounts_passkeys(client, account, authenticator):
    options = post_json(client, "/accounts/passkeys/options").json()

    excluded = [entry["id"] for entry in options["excludeCredentials"]]
    assert excluded == [b64url(authenticator.credential_id)]
    assert options["user"]["id"]


def test_the_same_authenticator_cannot_register_twice(
    client, account, authenticator, caplog
):
    response = add_passkey(client, authenticator)

    assert response.status_code == HTTPStatus.CONFLICT
    assert "already registered" in response.json()["detail"]
    assert account.passkeys.count() == 1


def test_stale_session_must_reauthenticate_before_adding_a_passkey(
    client, settings, account, authenticator
):
    make_stale(client, settings)

    refused = post_json(client, "/accounts/passkeys/options")
    confirmed = reauthenticate(client, authenticator)
    allowed = add_passkey(client, SoftwareAuthenticator())

    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert refused.json()["reauthenticate"].startswith("/accounts/reauthenticate/")
    assert confirmed.status_code == HTTPStatus.OK
    assert allowed.status_code == HTTPStatus.CREATED


def test_stale_session_page_post_goes_to_reauthentication_and_back(
    client, settings, account
):
    make_stale(client, settings)

    response = client.post(
        "/accounts/tokens/", {"name": "ci"}, HTTP_REFERER="/accounts/"
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/reauthenticate/?next=%2Faccounts%2F"
    assert not ApiToken.objects.exists()


def test_reauthentication_window_is_a_setting(client, settings, account):
    settings.ACCOUNTS_REAUTH_SECONDS = 0
    time.sleep(0.01)

    assert (
        post_json(client, "/accounts/passkeys/options").status_code
        == HTTPStatus.UNAUTHORIZED
    )


def test_reauthentication_requires_user_verification(
    client, settings, account, authenticator, caplog
):
    make_stale(client, settings)

    response = reauthenticate(client, authenticator, verified=False)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert (
        post_json(client, "/accounts/passkeys/options").status_code
        == HTTPStatus.UNAUTHORIZED
    )


def test_reauthentication_with_another_accounts_passkey_is_refused(
    client, settings, account
):
    from django.test import Client

    stranger_key = SoftwareAuthenticator()
    sign_up(Client(), stranger_key, name="Mallory")
    make_stale(client, settings)

    response = reauthenticate(client, stranger_key)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "not registered to your account" in response.json()["detail"]


def test_removing_a_passkey_needs_a_fresh_session(
    client, settings, account, authenticator
):
    add_passkey(client, SoftwareAuthenticator())
    second = account.passkeys.last()
    make_stale(client, settings)

    stale = client.post(f"/accounts/passkeys/{second.pk}/remove")
    reauthenticate(client, authenticator)
    fresh = client.post(f"/accounts/passkeys/{second.pk}/remove")

    assert stale.status_code == HTTPStatus.FOUND
    assert "/accounts/reauthenticate/" in stale["Location"]
    assert fresh.status_code == HTTPStatus.FOUND
    assert account.passkeys.count() == 1


def test_the_last_passkey_is_never_removed(client, account):
    only = account.passkeys.get()

    response = client.post(f"/accounts/passkeys/{only.pk}/remove", follow=True)

    assert Passkey.objects.filter(pk=only.pk).exists()
    assert "add another before removing it" in response.content.decode()


def test_another_accounts_passkey_cannot_be_renamed_or_removed(client, account):
    from django.test import Client

    other = sign_up(Client(), SoftwareAuthenticator(), name="Bob")
    theirs = other.passkeys.get()

    assert (
        client.post(
            f"/accounts/passkeys/{theirs.pk}/rename", {"name": "mine"}
        ).status_code
        == 404
    )
    assert client.post(f"/accounts/passkeys/{theirs.pk}/remove").status_code == 404


def test_renaming_a_passkey(client, account):
    passkey = account.passkeys.get()

    client.post(f"/accounts/passkeys/{passkey.pk}/rename", {"name": "  Work   laptop "})

    passkey.refresh_from_db()
    assert passkey.name == "Work laptop"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Work\x00laptop", "Worklaptop"), ("Key \u202etxt.exe", "Key txt.exe")],
)
def test_a_passkey_name_is_stored_without_control_characters(
    client, account, typed, stored
):
    passkey = account.passkeys.get()

    response = client.post(f"/accounts/passkeys/{passkey.pk}/rename", {"name": typed})

    passkey.refresh_from_db()
    assert response.status_code == HTTPStatus.FOUND
    assert passkey.name == stored


def test_a_passkey_added_with_control_characters_in_its_name_and_transports(
    client, account
):
    options = post_json(client, "/accounts/passkeys/options").json()
    credential = SoftwareAuthenticator().register(options)
    credential["response"]["transports"] = ["usb\x00", "internal"]

    response = post_json(
        client,
        "/accounts/passkeys/verify",
        {"credential": credential, "name": "Phone\x00"},
    )

    added = Passkey.objects.get(pk=response.json()["id"])
    assert response.status_code == HTTPStatus.CREATED
    assert (added.name, added.transports) == ("Phone", ["internal"])


def test_account_pages_need_a_session(client):
    assert client.get("/accounts/")["Location"].startswith("/accounts/signin/")


# API tokens -----------------------------------------------------------------


def create_token(client, name="ci") -> str:
    client.post("/accounts/tokens/", {"name": name})
    page = client.get("/accounts/").content.decode()
    return page.split("data-new-token>")[1].split("<")[0]


def test_token_is_shown_once_and_stored_hashed(client, account):
    secret = create_token(client)

    again = client.get("/accounts/").content.decode()
    token = ApiToken.objects.get()
    assert secret.startswith("lg_")
    assert secret not in again
    assert token.digest == ApiToken.digest_of(secret)
    assert secret not in {token.digest, token.hint}


def test_a_token_name_is_stored_without_control_characters(client, account):
    response = client.post("/accounts/tokens/", {"name": "ci\x00 deploy"})

    assert response.status_code == HTTPStatus.FOUND
    assert ApiToken.objects.get().name == "ci deploy"


def test_bearer_token_authenticates_api_requests_and_records_use(client, account):
    from django.test import Client

    secret = create_token(client)
    program = Client()

    response = program.get("/api/account/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == HTTPStatus.OK
    assert response.json()["username"] == account.username
    assert ApiToken.objects.get().last_used is not None


@pytest.mark.parametrize(
    "header",
    ["Bearer lg_wrong", "Bearer nonsense", "Bearer ", "Bearer lg_" + "x" * 300],
)
def test_bad_tokens_are_refused(client, header):
    response = client.get("/api/account/", HTTP_AUTHORIZATION=header)

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_revoked_token_is_refused(client, account):
    from django.test import Client

    secret = create_token(client)
    client.post(f"/accounts/tokens/{ApiToken.objects.get().pk}/revoke")

    response = Client().get("/api/account/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_the_api_schema_names_the_bearer_token_scheme(client):
    response = client.get("/api/schema/", {"format": "json"})

    schema = response.json()
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token (lg_...), made on the account page.",
    }
    assert {"apiToken": []} in schema["paths"]["/api/account/"]["get"]["security"]


def test_a_token_alone_never_passes_reauthentication(client, account, authenticator):
    from django.test import Client

    add_passkey(client, SoftwareAuthenticator())
    second = account.passkeys.last()
    secret = create_token(client)
    program = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    refused = program.delete(f"/api/account/passkeys/{second.pk}", **auth)
    options = program.post("/api/account/reauthenticate/options", **auth).json()
    confirmed = program.post(
        "/api/account/reauthenticate/verify",
        {"credential": authenticator.assertion(options)},
        content_type="application/json",
        **auth,
    )
    allowed = program.delete(f"/api/account/passkeys/{second.pk}", **auth)

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert "fresh passkey assertion" in refused.json()["detail"]
    assert confirmed.status_code == HTTPStatus.OK
    assert allowed.status_code == HTTPStatus.NO_CONTENT


def test_api_reauthentication_of_one_token_does_not_refresh_another(
    client, account, authenticator
):
    from django.test import Client

    first, second = create_token(client, "one"), create_token(client, "two")
    program = Client()
    options = program.post(
        "/api/account/reauthenticate/options", HTTP_AUTHORIZATION=f"Bearer {first}"
    ).json()
    program.post(
        "/api/account/reauthenticate/verify",
        {"credential": authenticator.assertion(options)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {first}",
    )

    passkey = account.passkeys.get()
    response = program.delete(
        f"/api/account/passkeys/{passkey.pk}", HTTP_AUTHORIZATION=f"Bearer {second}"
    )

    assert response.status_code == HTTPStatus.FORBIDDEN


def test_api_reauthentication_refuses_a_challenge_issued_to_another_token(
    client, account, authenticator
):
    from django.test import Client

    first, second = create_token(client, "one"), create_token(client, "two")
    program = Client()
    options = program.post(
        "/api/account/reauthenticate/options", HTTP_AUTHORIZATION=f"Bearer {first}"
    ).json()

    response = program.post(
        "/api/account/reauthenticate/verify",
        {"credential": authenticator.assertion(options)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {second}",
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_api_reauthentication_with_malformed_body_is_400(client, account):
    from django.test import Client

    secret = create_token(client)

    response = Client().post(
        "/api/account/reauthenticate/verify",
        "{oops",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST


# Roles ----------------------------------------------------------------------


def test_set_role_command(account):
    out = StringIO()

    call_command("set_role", "ada", "instructor", stdout=out)

    account.refresh_from_db()
    assert account.role == User.Role.INSTRUCTOR
    assert account.is_instructor
    assert "Ada is now instructor" in out.getvalue()


def test_staff_role_opens_the_admin(client, account):
    call_command("set_role", "Ada", "staff", stdout=StringIO())

    assert client.get("/admin/").status_code == HTTPStatus.OK


def test_set_role_refuses_unknown_accounts():
    with pytest.raises(CommandError, match="No account named 'nobody'"):
        call_command("set_role", "nobody", "staff")


def test_instructors_author_lessons_in_the_admin_but_cannot_manage_accounts(
    client, account
):
    call_command("set_role", "Ada", "instructor", stdout=StringIO())

    assert client.get("/admin/lessons/lesson/").status_code == HTTPStatus.OK
    assert client.get("/admin/accounts/user/").status_code == HTTPStatus.FORBIDDEN


def test_back_to_learner_takes_the_admin_away(client, account):
    call_command("set_role", "Ada", "staff", stdout=StringIO())
    call_command("set_role", "Ada", "learner", stdout=StringIO())

    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_removing_a_passkey_signs_out_every_other_session(
    client, account, authenticator
):
    from django.test import Client

    phone = SoftwareAuthenticator()
    add_passkey(client, phone)
    other = Client()
    options = post_json(other, "/accounts/signin/options").json()
    assert (
        post_json(
            other, "/accounts/signin/verify", {"credential": phone.assertion(options)}
        ).status_code
        == 200
    )
    assert other.get("/accounts/").status_code == HTTPStatus.OK

    client.post(f"/accounts/passkeys/{account.passkeys.get(name='Phone').pk}/remove")

    assert other.get("/accounts/")["Location"].startswith("/accounts/signin/")
    assert (
        post_json(other, "/accounts/passkeys/options").status_code
        == HTTPStatus.UNAUTHORIZED
    )
    assert client.get("/accounts/").status_code == HTTPStatus.OK


def test_removing_a_passkey_through_the_api_keeps_the_session_asking(client, account):
    add_passkey(client, SoftwareAuthenticator())
    phone = account.passkeys.get(name="Phone")

    response = client.delete(f"/api/account/passkeys/{phone.pk}")

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert not Passkey.objects.filter(pk=phone.pk).exists()
    assert client.get("/accounts/").status_code == HTTPStatus.OK


def test_signing_out_everywhere_ends_every_session_of_the_account(
    client, account, authenticator
):
    from django.test import Client

    other = Client()
    options = post_json(other, "/accounts/signin/options").json()
    post_json(
        other,
        "/accounts/signin/verify",
        {"credential": authenticator.assertion(options)},
    )
    assert other.get("/accounts/").status_code == HTTPStatus.OK

    response = client.post("/accounts/signout/everywhere", follow=True)

    assert "Every session of your account is signed out" in response.content.decode()
    assert other.get("/accounts/")["Location"].startswith("/accounts/signin/")
    assert client.get("/accounts/")["Location"].startswith("/accounts/signin/")


def test_signing_out_everywhere_leaves_api_tokens_and_other_accounts(client, account):
    from django.test import Client

    secret = create_token(client)
    other = Client()
    sign_up(other, SoftwareAuthenticator(), name="Grace")

    client.post("/accounts/signout/everywhere")

    api = Client(headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/account/").status_code == HTTPStatus.OK
    assert other.get("/accounts/").status_code == HTTPStatus.OK


def test_the_account_page_offers_to_sign_out_everywhere(client, account):
    page = client.get("/accounts/").content.decode()

    assert 'action="/accounts/signout/everywhere"' in page


def test_the_account_page_is_never_cached(client, account):
    assert "no-store" in client.get("/accounts/")["Cache-Control"]


def test_the_passkey_that_made_the_account_counts_as_used(account):
    assert account.passkeys.get().last_used is not None
