from django.urls import path

from accounts.api import views

app_name = "accounts-api"

urlpatterns = [
    path("", views.AccountView.as_view(), name="account"),
    path(
        "reauthenticate/options",
        views.ReauthenticateOptionsView.as_view(),
        name="reauthenticate-options",
    ),
    path(
        "reauthenticate/verify",
        views.ReauthenticateVerifyView.as_view(),
        name="reauthenticate-verify",
    ),
    path("passkeys/<int:pk>", views.PasskeyDetailView.as_view(), name="passkey"),
]
