"""Trigram indexes for catalogue search on PostgreSQL.

Search filters with ``icontains`` (``UPPER(column) LIKE UPPER('%word%')``),
which no b-tree index can serve; a trigram GIN index on the same expression
can. SQLite, the embedded default, keeps scanning: its catalogues are small.
"""

from django.db import migrations

COLUMNS = ("title", "summary", "body")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS lessons_lesson_{column}_trgm "
            f"ON lessons_lesson USING gin (UPPER({column}) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS lessons_lesson_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("lessons", "0002_content_version"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
