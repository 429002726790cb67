"""CITATION.cff and LICENSE agree with pyproject.toml. The CFF was validated against its schema with
cffconvert 2.0.0 (`cffconvert --validate`: valid, schema 1.2.0; 2026-12-07), which is not a project
dependency: it pins jsonschema<4."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The keys CFF 1.2.0 requires, and the ones this project promises.
REQUIRED = {"cff-version", "message", "title", "authors"}


def test_citation_names_this_release():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert REQUIRED <= set(cff) and cff["cff-version"] == "1.2.0"
    assert (cff["title"], str(cff["version"]), cff["license"]) == (project["name"], project["version"],
                                                                   project["license"])
    assert cff["authors"] == [{"name": "The dreamerbench authors"}]
    assert all({"type", "title", "authors", "year"} <= set(ref) for ref in cff["references"])
    assert "MIT License" in (ROOT / "LICENSE").read_text().splitlines()[0] and project["license"] == "MIT"

