from django.urls import path

from lessons import views

app_name = "lessons"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="detail"),
    path("lessons/<slug:slug>/path/", views.lesson_path, name="path"),
    path("topics/", views.topic_index, name="topics"),
    path("topics/<path:path>/", views.topic_detail, name="topic"),
]
