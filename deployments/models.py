from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from accounts.models import User


class Run(models.Model):
    """One pass of the pipeline on one target: building and deploying a
    worked example, deploying an image, rolling back or tearing down."""

    class Kind(models.TextChoices):
        EXAMPLE = "example", "worked example"
        IMAGE = "image", "image"
        ROLLBACK = "rollback", "roll back"
        TEARDOWN = "teardown", "tear down"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Builder(models.TextChoices):
        BUILDAH = "buildah", "buildah (daemonless)"
        DOCKER = "docker", "Docker engine"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What the run deploys: the container name, which is the example's slug
    # for worked examples. One active run per subject and target.
    subject = models.SlugField(max_length=64)
    target = models.CharField(max_length=64, default="local")
    example = models.SlugField(max_length=100, blank=True)
    image = models.CharField(max_length=512, blank=True)
    # For image runs: the port the service listens on and where it answers
    # when healthy. Worked examples name theirs in their manifest.
    port = models.PositiveIntegerField(null=True, blank=True)
    health_path = models.CharField(max_length=200, blank=True)
    builder = models.CharField(
        max_length=16, choices=Builder.choices, default=Builder.BUILDAH
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs"
    )
    digest = models.CharField(max_length=71, blank=True)
    source_hash = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "target"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_subject_and_target",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.kind} {self.subject} on {self.target})"

    def get_absolute_url(self) -> str:
        return reverse("deployments:run", kwargs={"run_id": self.pk})

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration(self) -> timedelta | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


class Step(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING
    )
    # Lines as the tools wrote them, with every secret value masked.
    log = models.TextField(blank=True)
    # What the step established, in a sentence or a few.
    proof = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="step_position")
        ]

    def __str__(self) -> str:
        return f"{self.name} of run {self.run_id}"


class Deployment(models.Model):
    """A named service on a target: what runs now and what ran before."""

    class Status(models.TextChoices):
        LIVE = "live"
        TORN_DOWN = "torn_down", "torn down"

    name = models.SlugField(max_length=64)
    target = models.CharField(max_length=64, default="local")
    example = models.SlugField(max_length=100, blank=True)
    repository = models.CharField(max_length=400)
    digest = models.CharField(max_length=71, blank=True)
    previous_digest = models.CharField(max_length=71, blank=True)
    # Where the previous digest lives: an image deployed anew under the same
    # name may come from another repository. Empty: the same repository.
    previous_repository = models.CharField(max_length=400, blank=True)
    container_id = models.CharField(max_length=64, blank=True)
    container_name = models.CharField(max_length=128, blank=True)
    port = models.PositiveIntegerField(default=0)
    host_port = models.PositiveIntegerField(null=True, blank=True)
    health_path = models.CharField(max_length=200, default="/")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.LIVE
    )
    last_run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who first deployed it. Only they (or staff) redeploy under its name,
    # roll it back, tear it down or read its logs.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deployments",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "target"]
        constraints = [
            models.UniqueConstraint(fields=["name", "target"], name="deployment_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.target}"

    def managed_by(self, account: "User") -> bool:
        """Whether this account may act on the deployment: its owner, or
        staff. One without an owner (deployed before owners were kept, by
        nobody the runs name) is staff's alone."""
        if account.role == account.Role.STAFF:
            return True
        return self.owner_id is not None and self.owner_id == account.pk

    def claimable_by(self, account: "User") -> bool:
        """Whether ``account`` may deploy anew under this name: whoever may
        act on it, or, once it is torn down and nothing of its owner's runs
        any more, any instructor, who becomes its owner."""
        return self.managed_by(account) or self.status == self.Status.TORN_DOWN

    @property
    def url(self) -> str:
        if self.status != self.Status.LIVE or not self.host_port:
            return ""
        return f"http://127.0.0.1:{self.host_port}/"


class Secret(models.Model):
    """A secret value an example needs, sealed at rest
    (``deployments.keys``). Never logged, never returned by the API."""

    example = models.SlugField(max_length=100)
    name = models.CharField(max_length=63)
    sealed = models.BinaryField()
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["example", "name"], name="secret_name")
        ]

    def __str__(self) -> str:
        return f"secret {self.name} of {self.example}"
