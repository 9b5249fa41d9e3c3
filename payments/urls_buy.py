"""Buying a lesson from its page; mounted at the site's root beside the
lesson pages."""

from django.urls import path

from payments import purchase_views

app_name = "purchases"

urlpatterns = [
    path("lessons/<slug:slug>/buy", purchase_views.lesson_buy, name="buy"),
    path("lessons/<slug:slug>/path/buy", purchase_views.path_buy, name="buy-path"),
]
