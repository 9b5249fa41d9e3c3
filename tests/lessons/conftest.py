import pytest

from tests.lessons.arxiv_server import ArxivServer


@pytest.fixture
def arxiv_server(settings):
    """The local arXiv API, with the site pointed at it. Turns are short
    here; the three-second interval has a test of its own."""
    server = ArxivServer()
    server.start()
    settings.ARXIV_API_URL = server.url
    settings.ARXIV_REQUEST_INTERVAL_SECONDS = 0.05
    settings.ARXIV_BACKOFF_SECONDS = 0.01
    settings.ARXIV_TIMEOUT_SECONDS = 5
    yield server
    server.stop()
