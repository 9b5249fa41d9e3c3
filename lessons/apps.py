from django.apps import AppConfig


class LessonsConfig(AppConfig):
    name = "lessons"
    verbose_name = "Lessons"

    def ready(self) -> None:
        from lessons import checks  # noqa: F401  registers the system checks
        from lessons.caching import watch_content

        watch_content()
