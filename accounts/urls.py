from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.account, name="account"),
    path("signup/", views.signup_page, name="signup"),
    path("signup/options", views.signup_options, name="signup-options"),
    path("signup/verify", views.signup_verify, name="signup-verify"),
    path("signin/", views.signin_page, name="signin"),
    path("signin/options", views.signin_options, name="signin-options"),
    path("signin/verify", views.signin_verify, name="signin-verify"),
    path("signout/", views.signout, name="signout"),
    path(
        "signout/everywhere",
        views.signout_everywhere,
        name="signout-everywhere",
    ),
    path("reauthenticate/", views.reauthenticate_page, name="reauthenticate"),
    path(
        "reauthenticate/options",
        views.reauthenticate_options,
        name="reauthenticate-options",
    ),
    path(
        "reauthenticate/verify",
        views.reauthenticate_verify,
        name="reauthenticate-verify",
    ),
    path("passkeys/options", views.passkey_add_options, name="passkey-add-options"),
    path("passkeys/verify", views.passkey_add_verify, name="passkey-add-verify"),
    path("passkeys/<int:pk>/rename", views.passkey_rename, name="passkey-rename"),
    path("passkeys/<int:pk>/remove", views.passkey_remove, name="passkey-remove"),
    path("tokens/", views.token_create, name="token-create"),
    path("tokens/<int:pk>/revoke", views.token_revoke, name="token-revoke"),
]
