from django.urls import path

from lessons import views, views_papers

app_name = "lessons"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="detail"),
    path("lessons/<slug:slug>/path/", views.lesson_path, name="path"),
    path("topics/", views.topic_index, name="topics"),
    path("topics/<path:path>/", views.topic_detail, name="topic"),
    # Old-style ids hold a slash: hep-th/9901001.
    path("papers/<path:arxiv_id>/", views_papers.paper_detail, name="paper"),
    path("citations/", views_papers.citations_report, name="citations"),
]
