"""What selling a lesson leaves in the logs."""

import logging


def test_the_402_offer_is_not_logged_as_a_warning(client, lesson, caplog):
    with caplog.at_level(logging.INFO, logger="django.request"):
        offered = client.get(f"/api/lessons/{lesson.slug}/content")
        missing = client.get("/api/lessons/no-such-lesson/content")

    assert (offered.status_code, missing.status_code) == (402, 404)
    logged = [
        record.status_code
        for record in caplog.records
        if record.name == "django.request"
    ]
    assert logged == [404]
