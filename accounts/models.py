from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """An account. Lessons name their author through it."""

    class Role(models.TextChoices):
        LEARNER = "learner"
        INSTRUCTOR = "instructor"
        STAFF = "staff"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LEARNER)
