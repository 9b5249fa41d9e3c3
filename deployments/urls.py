from django.urls import path

from deployments import views
from deployments.models import Run

app_name = "deployments"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("examples/<slug:slug>/run", views.example_run, name="example-run"),
    path("examples/<slug:slug>/workflow.yml", views.example_workflow, name="workflow"),
    path(
        "examples/<slug:slug>/secrets/<str:name>",
        views.example_secret,
        name="example-secret",
    ),
    path("images", views.image_deploy, name="image-deploy"),
    path(
        "<int:deployment_id>/rollback",
        views.deployment_action,
        {"kind": Run.Kind.ROLLBACK},
        name="rollback",
    ),
    path(
        "<int:deployment_id>/teardown",
        views.deployment_action,
        {"kind": Run.Kind.TEARDOWN},
        name="teardown",
    ),
    path("<int:deployment_id>/logs", views.deployment_logs, name="logs"),
]
