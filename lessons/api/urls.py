from django.urls import path

from lessons.api import views

app_name = "lessons-api"

urlpatterns = [
    path("lessons/", views.LessonListView.as_view(), name="lesson-list"),
    path(
        "lessons/<slug:slug>/", views.LessonDetailView.as_view(), name="lesson-detail"
    ),
    path(
        "lessons/<slug:slug>/neighborhood",
        views.LessonNeighbourhoodView.as_view(),
        name="lesson-neighbourhood",
    ),
    path(
        "lessons/<slug:slug>/path", views.LessonPathView.as_view(), name="lesson-path"
    ),
    path("topics/", views.TopicListView.as_view(), name="topic-list"),
    path("papers/", views.PaperListView.as_view(), name="paper-list"),
]
