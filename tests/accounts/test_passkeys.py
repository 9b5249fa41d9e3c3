"""Sign-up and sign-in with passkeys, and every refusal, answered by a
software authenticator that signs for real."""

import logging
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth import SESSION_KEY, authenticate
from django.utils import timezone

from accounts.models import Challenge, User
from tests.accounts.authenticator import SoftwareAuthenticator, b64url, unb64url
from tests.accounts.conftest import post_json, sign_in_answer, sign_up

pytestmark = pytest.mark.django_db


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def test_sign_up_creates_the_account_its_passkey_and_a_session(client, authenticator):
    user = sign_up(client, authenticator, name="Grace")

    passkey = user.passkeys.get()
    assert signed_in(client)
    assert not user.has_usable_password()
    assert bytes(passkey.credential_id) == authenticator.credential_id
    assert passkey.name == "Passkey 1"


def test_user_handle_is_random_and_at_most_64_bytes(client, authenticator):
    user = sign_up(client, authenticator, name="Grace")
    client.post("/accounts/signout/")
    other = sign_up(client, SoftwareAuthenticator(), name="Alan")

    handle = bytes(user.user_handle)
    assert handle == authenticator.user_handle
    assert 16 <= len(handle) <= 64
    assert handle not in {str(user.pk).encode(), user.pk.to_bytes(8, "big"), b"Grace"}
    assert handle != bytes(other.user_handle)


def test_registration_requires_resident_key_and_user_verification(client):
    options = post_json(
        client, "/accounts/signup/options", {"display_name": "Grace"}
    ).json()

    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"


def test_sign_in_starts_a_session_and_records_the_use(client, authenticator, member):
    response = sign_in_answer(client, authenticator)

    passkey = member.passkeys.get()
    assert response.status_code == HTTPStatus.OK
    assert signed_in(client)
    assert passkey.sign_count == authenticator.sign_count
    assert passkey.last_used is not None


def test_sign_in_options_ask_for_user_verification(client):
    options = post_json(client, "/accounts/signin/options").json()

    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"


def test_credential_ids_of_any_length_are_accepted(client):
    long_key = SoftwareAuthenticator(credential_id_length=1023)
    sign_up(client, long_key)
    client.post("/accounts/signout/")

    assert sign_in_answer(client, long_key).status_code == HTTPStatus.OK


def test_display_name_already_taken_is_refused(client, member):
    response = post_json(client, "/accounts/signup/options", {"display_name": "ada"})

    assert response.status_code == HTTPStatus.CONFLICT
    assert "taken" in response.json()["detail"]


@pytest.mark.parametrize("name", ["", " ", "x" * 65, "<script>", "tab\there"])
def test_bad_display_names_are_refused(client, name):
    response = post_json(client, "/accounts/signup/options", {"display_name": name})

    assert response.status_code == HTTPStatus.BAD_REQUEST


# Refusals: each is a 4xx with a short message, a log line and no session.


def refused(response, caplog, words: str) -> None:
    assert HTTPStatus.BAD_REQUEST <= response.status_code < 500, response.content
    assert words in response.json()["detail"]
    assert any(record.levelno >= logging.WARNING for record in caplog.records)


def test_malformed_json_is_refused(client, caplog):
    response = client.post(
        "/accounts/signin/verify", "{not json", content_type="application/json"
    )

    refused(response, caplog, "not valid JSON")
    assert not signed_in(client)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"credential": "text"},
        {"credential": {}},
        {"credential": {"response": {}}},
        {"credential": {"response": {"clientDataJSON": "!!!not base64!!!"}}},
        {"credential": {"response": {"clientDataJSON": b64url(b"not json")}}},
        {"credential": {"rawId": 5, "response": {"clientDataJSON": 7}}},
    ],
)
def test_garbage_answers_get_4xx_never_500(client, body):
    post_json(client, "/accounts/signin/options")

    response = post_json(client, "/accounts/signin/verify", body)

    assert HTTPStatus.BAD_REQUEST <= response.status_code < 500
    assert not signed_in(client)


def test_wrong_base64url_in_the_answer_is_refused(
    client, authenticator, member, caplog
):
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options)
    credential["response"]["signature"] = "***"

    response = post_json(client, "/accounts/signin/verify", {"credential": credential})

    refused(response, caplog, "Passkey refused")
    assert not signed_in(client)


def test_wrong_origin_is_refused(client, authenticator, member, caplog):
    response = sign_in_answer(client, authenticator, origin="http://evil.example")

    refused(response, caplog, "made for another site (http://evil.example)")
    assert not signed_in(client)


def test_origin_comes_from_settings_not_the_host_header(
    client, authenticator, member, caplog
):
    options = client.post(
        "/accounts/signin/options",
        {},
        content_type="application/json",
        HTTP_HOST="evil.example",
    )

    assert options.status_code == HTTPStatus.BAD_REQUEST  # not an allowed host at all
    response = sign_in_answer(client, authenticator, origin="http://testserver")
    refused(response, caplog, "made for another site")


def test_wrong_rp_id_is_refused(client, authenticator, member, caplog):
    response = sign_in_answer(client, authenticator, rp_id="evil.example")

    refused(response, caplog, "made for another relying party id")
    assert not signed_in(client)


def test_registration_for_another_rp_id_is_refused(client, caplog):
    options = post_json(
        client, "/accounts/signup/options", {"display_name": "Eve"}
    ).json()
    credential = SoftwareAuthenticator().register(options, rp_id="evil.example")

    response = post_json(client, "/accounts/signup/verify", {"credential": credential})

    refused(response, caplog, "made for another relying party id")
    assert not User.objects.filter(username="Eve").exists()


def test_replayed_challenge_is_refused(client, authenticator, member, caplog):
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options)
    assert (
        post_json(
            client, "/accounts/signin/verify", {"credential": credential}
        ).status_code
        == 200
    )
    client.post("/accounts/signout/")

    response = post_json(client, "/accounts/signin/verify", {"credential": credential})

    refused(response, caplog, "unknown or already used")
    assert not signed_in(client)


def test_challenge_is_consumed_even_when_verification_fails(
    client, authenticator, member, caplog
):
    options = post_json(client, "/accounts/signin/options").json()
    bad = authenticator.assertion(options, origin="http://evil.example")
    assert (
        post_json(client, "/accounts/signin/verify", {"credential": bad}).status_code
        == 400
    )

    good = authenticator.assertion(options)
    response = post_json(client, "/accounts/signin/verify", {"credential": good})

    refused(response, caplog, "unknown or already used")
    assert not Challenge.objects.exists()


def test_expired_challenge_is_refused(client, authenticator, member, caplog):
    options = post_json(client, "/accounts/signin/options").json()
    Challenge.objects.update(expires=timezone.now() - timedelta(seconds=1))

    response = post_json(
        client,
        "/accounts/signin/verify",
        {"credential": authenticator.assertion(options)},
    )

    refused(response, caplog, "expired")


def test_challenge_from_another_browser_session_is_refused(
    client, django_user_model, authenticator, member, caplog
):
    from django.test import Client

    other = Client()
    options = post_json(other, "/accounts/signin/options").json()

    response = post_json(
        client,
        "/accounts/signin/verify",
        {"credential": authenticator.assertion(options)},
    )

    refused(response, caplog, "unknown or already used")


def test_tampered_client_data_is_refused(client, authenticator, member, caplog):
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options)
    client_data = unb64url(credential["response"]["clientDataJSON"]).replace(
        b'"crossOrigin": false', b'"crossOrigin": false '
    )
    credential["response"]["clientDataJSON"] = b64url(client_data)

    response = post_json(client, "/accounts/signin/verify", {"credential": credential})

    refused(response, caplog, "signature could not be verified")
    assert not signed_in(client)


def test_tampered_signature_is_refused(client, authenticator, member, caplog):
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options)
    signature = bytearray(unb64url(credential["response"]["signature"]))
    signature[-1] ^= 0x01
    credential["response"]["signature"] = b64url(bytes(signature))

    response = post_json(client, "/accounts/signin/verify", {"credential": credential})

    refused(response, caplog, "could not be verified")
    assert not signed_in(client)


def test_unknown_credential_is_refused(client, member, caplog):
    stranger = SoftwareAuthenticator()
    stranger.user_handle = bytes(member.user_handle)

    response = sign_in_answer(client, stranger)

    refused(response, caplog, "not registered here")
    assert not signed_in(client)


def test_sign_in_without_user_verification_is_refused(
    client, authenticator, member, caplog
):
    response = sign_in_answer(client, authenticator, verified=False)

    refused(response, caplog, "did not verify you")
    assert not signed_in(client)


def test_sign_up_without_user_verification_is_refused(client, caplog):
    options = post_json(
        client, "/accounts/signup/options", {"display_name": "Eve"}
    ).json()
    credential = SoftwareAuthenticator().register(options, verified=False)

    response = post_json(client, "/accounts/signup/verify", {"credential": credential})

    refused(response, caplog, "did not verify you")
    assert not User.objects.exists()


def test_sign_counter_going_backwards_is_refused_and_logged(
    client, authenticator, member, caplog
):
    assert sign_in_answer(client, authenticator).status_code == 200
    assert sign_in_answer(client, authenticator).status_code == 200
    client.post("/accounts/signout/")

    response = sign_in_answer(client, authenticator, count=1)

    refused(response, caplog, "counter went backwards")
    assert "may have been cloned" in caplog.text
    assert member.passkeys.get().sign_count == 2
    assert not signed_in(client)


def test_counter_of_zero_is_accepted_for_authenticators_without_one(
    client, authenticator, member
):
    assert sign_in_answer(client, authenticator, count=0).status_code == 200
    client.post("/accounts/signout/")

    assert sign_in_answer(client, authenticator, count=0).status_code == 200


def test_user_handle_of_another_account_is_refused(
    client, authenticator, member, caplog
):
    response = sign_in_answer(client, authenticator, user_handle=b"someone-else")

    refused(response, caplog, "belongs to another account")
    assert not signed_in(client)


def test_sign_in_answer_without_user_handle_is_refused(
    client, authenticator, member, caplog
):
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options)
    credential["response"]["userHandle"] = None

    response = post_json(client, "/accounts/signin/verify", {"credential": credential})

    refused(response, caplog, "belongs to another account")


def test_disabled_account_cannot_sign_in(client, authenticator, member, caplog):
    User.objects.filter(pk=member.pk).update(is_active=False)

    response = sign_in_answer(client, authenticator)

    refused(response, caplog, "disabled")


def test_requests_for_options_are_rate_limited_per_client(client, settings):
    settings.ACCOUNTS_OPTIONS_RATE = "3/m"

    codes = [
        post_json(client, "/accounts/signin/options").status_code for _ in range(2)
    ]
    codes += [
        post_json(
            client, "/accounts/signup/options", {"display_name": "Nia"}
        ).status_code
    ]
    refused = post_json(client, "/accounts/signin/options")

    assert codes == [200, 200, 200]
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refused["Retry-After"] == "60"


def test_sign_in_and_sign_up_answers_are_rate_limited_per_client(client, settings):
    settings.ACCOUNTS_CEREMONY_RATE = "2/m"

    codes = [
        post_json(client, "/accounts/signin/verify", {"credential": {}}).status_code
    ]
    codes += [
        post_json(client, "/accounts/signup/verify", {"credential": {}}).status_code
    ]
    codes += [
        post_json(client, "/accounts/signin/verify", {"credential": {}}).status_code
    ]

    assert codes == [400, 400, HTTPStatus.TOO_MANY_REQUESTS]


def test_passwords_never_sign_anyone_in(member):
    member.set_password("a password")
    member.save()

    assert authenticate(username=member.username, password="a password") is None


def test_admin_sign_in_goes_to_passkeys(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/signin/?next=%2Fadmin%2F"


@pytest.mark.parametrize(
    "name",
    ["Jane Doe", "jane.doe", "J_D-2"],
)
def test_display_names_with_single_spaces_and_marks_are_accepted(client, name):
    user = sign_up(client, SoftwareAuthenticator(), name=name)

    assert user.username == name


@pytest.mark.parametrize(
    "name",
    [
        "jаne",
        "Élise",
        "ｊａｎｅ",
        "jane²",
        "two  spaces",
        "_x",
        "",
        "x" * 65,
        "<b>",
    ],
)
def test_names_that_could_impersonate_or_not_be_stored_are_refused_before_a_passkey_is_made(
    client, name
):
    response = post_json(client, "/accounts/signup/options", {"display_name": name})

    assert response.status_code == HTTPStatus.BAD_REQUEST, name
    assert not Challenge.objects.exists()


def test_display_names_differing_only_in_case_are_one_name(client, member):
    response = post_json(client, "/accounts/signup/options", {"display_name": "ADA"})

    assert response.status_code == HTTPStatus.CONFLICT


@pytest.mark.parametrize("value", [None, 12345, True, ["Ada"]])
def test_display_name_must_be_text(client, value):
    response = post_json(client, "/accounts/signup/options", {"display_name": value})

    assert response.status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize(
    "body",
    [
        '{"credential": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}",
        "[" * 200_000 + "]" * 200_000,
    ],
)
def test_deeply_nested_json_is_refused_not_a_500(client, body):
    response = client.post(
        "/accounts/signin/verify", body, content_type="application/json"
    )

    assert HTTPStatus.BAD_REQUEST <= response.status_code < 500


def test_deeply_nested_client_data_is_refused_not_a_500(client, authenticator, member):
    options = post_json(client, "/accounts/signin/options").json()
    credential = authenticator.assertion(options)
    credential["response"]["clientDataJSON"] = b64url(
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    )

    response = post_json(client, "/accounts/signin/verify", {"credential": credential})

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_transports_of_the_wrong_type_are_ignored(client):
    options = post_json(
        client, "/accounts/signup/options", {"display_name": "Tia"}
    ).json()
    credential = SoftwareAuthenticator().register(options)
    credential["response"]["transports"] = 42

    response = post_json(client, "/accounts/signup/verify", {"credential": credential})

    assert response.status_code == HTTPStatus.OK
    assert User.objects.get(username="Tia").passkeys.get().transports == []


def test_a_public_key_that_cannot_verify_is_refused_at_registration(
    client, monkeypatch
):
    import cbor2

    options = post_json(
        client, "/accounts/signup/options", {"display_name": "Kim"}
    ).json()
    key = SoftwareAuthenticator()
    monkeypatch.setattr(key, "cose_public_key", lambda: cbor2.dumps([1, 2, 3]))

    response = post_json(
        client, "/accounts/signup/verify", {"credential": key.register(options)}
    )

    assert HTTPStatus.BAD_REQUEST <= response.status_code < 500
    assert not User.objects.filter(username="Kim").exists()


def test_a_forged_answer_learns_nothing_about_the_stored_counter(
    client, authenticator, member, caplog
):
    forger = SoftwareAuthenticator()
    forger.credential_id = authenticator.credential_id
    forger.user_handle = authenticator.user_handle

    response = sign_in_answer(client, forger, count=0)

    assert "could not be verified" in response.json()["detail"]
    assert "cloned" not in caplog.text


def test_a_signed_in_learner_at_the_admin_is_told_why(client, member, authenticator):
    sign_in_answer(client, authenticator)

    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "signed in as Ada" in response.content.decode()


def test_json_callers_get_json_when_the_csrf_check_fails(authenticator):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)

    response = post_json(strict, "/accounts/signin/options")

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "CSRF" in response.json()["detail"]


def test_signed_out_json_calls_to_reauthentication_get_401_json(client):
    response = post_json(client, "/accounts/reauthenticate/options")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["signin"].startswith("/accounts/signin/")


@pytest.mark.parametrize("path", ["/accounts/signup/", "/accounts/signin/"])
def test_the_sign_in_pages_answer_head_as_get(client, path):
    answer = client.head(path)

    assert answer.status_code == HTTPStatus.OK
    assert answer.content == b""
