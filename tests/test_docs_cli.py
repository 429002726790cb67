"""docs/reference/cli.md is what `python -m harness.docs_cli` generates from the commands' --help now."""

from harness import docs_cli


def test_cli_page_is_current():
    assert docs_cli.PAGE.read_text() == docs_cli.render(), "run: python -m harness.docs_cli"
