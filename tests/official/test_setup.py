"""The tool that obtains the official code: the index page's hash check and clear errors (no venv needed)."""

from pathlib import Path

import pytest

from agents.official import setup

PAGE = """<html><body><h1>Links for dreamer</h1>
<a href="https://files.example/dreamer-3.3.0.tar.gz#sha256=00">dreamer-3.3.0.tar.gz</a><br/>
<a href="https://files.example/dreamer-3.3.1.tar.gz#sha256={sha}">dreamer-3.3.1.tar.gz</a><br/>
</body></html>"""


def test_the_sdist_url_comes_from_the_index_page_with_the_pinned_hash():
    url = setup.sdist_url(PAGE.format(sha=setup.SDIST_SHA256).encode())
    assert url == "https://files.example/dreamer-3.3.1.tar.gz"


def test_a_hash_on_the_index_page_that_differs_from_the_pin_is_refused():
    with pytest.raises(setup.OfficialSetupError, match="pinned b6dca5e1"):
        setup.sdist_url(PAGE.format(sha="ab" * 32).encode())


def test_an_index_page_without_the_version_lists_what_it_has():
    page = PAGE.replace("3.3.1", "3.4.0").format(sha="00").encode()
    with pytest.raises(setup.OfficialSetupError, match=r"lists no dreamer-3.3.1.tar.gz .*dreamer-3.4.0.tar.gz"):
        setup.sdist_url(page)


def test_an_unreachable_index_is_a_clear_error_and_leaves_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(setup, "INDEX_PAGE", "http://127.0.0.1:9/simple/dreamer/")  # a closed port
    with pytest.raises(setup.OfficialSetupError, match="could not download http://127.0.0.1:9/.*place dreamer"):
        setup.download(tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_a_corrupt_cached_sdist_is_not_used(tmp_path: Path, monkeypatch):
    (tmp_path / setup.SDIST).write_bytes(b"not the sdist")
    monkeypatch.setattr(setup, "INDEX_PAGE", "http://127.0.0.1:9/simple/dreamer/")
    with pytest.raises(setup.OfficialSetupError, match="could not download"):
        setup.download(tmp_path)


def test_the_official_python_before_setup_says_what_to_run(tmp_path: Path):
    with pytest.raises(setup.OfficialSetupError, match=r"python -m agents.official.setup"):
        setup.official_python(tmp_path / "venv")
