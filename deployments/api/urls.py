from django.urls import path

from deployments.api import views
from deployments.models import Run

app_name = "deployments-api"

urlpatterns = [
    path("deployments/", views.DeploymentsView.as_view(), name="deployments"),
    path("deployments/runs/", views.RunsView.as_view(), name="runs"),
    path("deployments/runs/<int:run_id>/", views.RunView.as_view(), name="run"),
    path(
        "deployments/examples/<slug:slug>/runs",
        views.ExampleRunsView.as_view(),
        name="example-runs",
    ),
    path(
        "deployments/examples/<slug:slug>/secrets/<str:name>",
        views.ExampleSecretView.as_view(),
        name="example-secret",
    ),
    path(
        "deployments/<int:deployment_id>/rollback",
        views.DeploymentActionView.as_view(kind=Run.Kind.ROLLBACK),
        name="rollback",
    ),
    path(
        "deployments/<int:deployment_id>/teardown",
        views.DeploymentActionView.as_view(kind=Run.Kind.TEARDOWN),
        name="teardown",
    ),
    path(
        "deployments/<int:deployment_id>/logs",
        views.DeploymentLogsView.as_view(),
        name="logs",
    ),
]
