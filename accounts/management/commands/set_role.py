from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.services import user_set_role
from config.errors import ApplicationError


class Command(BaseCommand):
    help = "Give an account a role: learner, instructor or staff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=User.Role.values)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username__iexact=options["username"]).first()
        if user is None:
            raise CommandError(f"No account named {options['username']!r}.")
        try:
            user_set_role(user=user, role=options["role"])
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{user.username} is now {user.role}.")
