from django.urls import path, re_path

from lessons.api import views

app_name = "lessons-api"

urlpatterns = [
    path("lessons/", views.LessonListView.as_view(), name="lesson-list"),
    path(
        "lessons/<slug:slug>/", views.LessonDetailView.as_view(), name="lesson-detail"
    ),
    # Programs write these with and without a final slash; both work.
    re_path(
        r"^lessons/(?P<slug>[-a-zA-Z0-9_]+)/neighborhood/?$",
        views.LessonNeighbourhoodView.as_view(),
        name="lesson-neighbourhood",
    ),
    re_path(
        r"^lessons/(?P<slug>[-a-zA-Z0-9_]+)/path/?$",
        views.LessonPathView.as_view(),
        name="lesson-path",
    ),
    path("topics/", views.TopicListView.as_view(), name="topic-list"),
    path("papers/", views.PaperListView.as_view(), name="paper-list"),
]
