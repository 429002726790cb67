"""The published score files ship with the package: every file listed with its checksum, found from an
installed package, and no project file reads from the reference shelf beside the checkout."""

import hashlib
import re
import subprocess
import tomllib
from pathlib import Path

from results import reference
from results.reference import PUBLISHED

REPO = Path(__file__).resolve().parents[2]
# A path into the shelf beside the checkout in any spelling (dot-dot-slash shared, shared/data, path parts).
SHELF = re.compile(r"\.\./shared|shared[/]data/|['\"]\.\.['\"]\s*[,/]\s*['\"]shared['\"]")


def test_every_shipped_file_is_listed_with_its_checksum():
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| `([0-9a-f]{64})` \|$",
                      (PUBLISHED / "SOURCES.md").read_text(), re.MULTILINE)
    listed = {name: digest for name, _, _, digest in rows}
    shipped = {p.relative_to(PUBLISHED).as_posix() for p in PUBLISHED.rglob("*") if p.is_file() and p.name != "SOURCES.md"}
    assert set(listed) == shipped and len(shipped) == 47
    for name, digest in listed.items():
        assert hashlib.sha256((PUBLISHED / name).read_bytes()).hexdigest() == digest, name
    assert all(" @ " in origin and licence.strip() for _, origin, licence, _ in rows)
    assert {p.relative_to(PUBLISHED).as_posix() for p in reference.published_files("atari26")} <= shipped


def test_the_package_data_globs_ship_the_published_files():
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    for path in PUBLISHED.rglob("*"):
        if path.is_file():
            assert any(path.match(g) for g in globs), f"{path.name} is not matched by package-data {globs}"


def test_no_project_file_reads_from_the_shared_shelf():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = REPO / name
        if name.endswith(".md") or path.suffix in (".gz", ".png", ".pdf") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {m.group(0)}" for m in SHELF.finditer(text)]
    assert offenders == [], "project files must not refer to the shelf beside the checkout:\n" + "\n".join(offenders)
