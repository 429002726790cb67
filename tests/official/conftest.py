import pytest

from agents.official import setup


@pytest.fixture(scope="session")
def official_python():
    """The official venv's python; sets it up (downloads the first time) like a user would."""
    return setup.setup()
