"""The documentation names only what exists: paths, make targets and commands.

Checked: README.md, every Markdown file under docs/, and the component pages (agents/**/README.md,
agents/dreamer/PRESETS.md, results/README.md, results/reference/README.md, slurm/README.md, suites/README.md)
where they exist.

(a) Paths. A Markdown link target (not a URL or an #anchor) must exist relative to the page. A backticked
    word outside code blocks is a path when it has no spaces and either starts with a top-level entry of the
    repository (`agents/...`, `.ci/run`) or ends in a file extension (`.py`, `.yaml`, ...); it must exist
    relative to the repository root or to the page's folder (a component page names its own files), and a
    bare file name (`nets.py`) may name a file anywhere in the repository. Not checked: outputs (a path git
    ignores, such as runs/..., report/..., .venv/...; a report's plots/... and tables/...), placeholders
    (`<suite>`, `{a,b}`, `*`, `...`, `$VAR`, an upper-case folder such as RUN/), key=value arguments,
    absolute paths, and the files of other projects and of run directories named in ELSEWHERE.
    "Exists" means a file or folder that a commit would hold: tracked, or untracked and not ignored.
(b) Every `make TARGET` in code names a target of the Makefile.
(c) Every `python -m MODULE ...` command in code (code blocks and backticks) works: MODULE imports; a
    harness.run command's --plan succeeds (it composes and validates the configs and changes nothing) or is
    refused only for a dependency this machine lacks (an extra not installed, the official venv not set
    up: that is the machine, not the page); a module of this repository with an argparse parser answers
    --help. Commands with placeholders (<...>,
    [...], ..., $VAR) are skipped, as are the arguments of modules without a parser (running them would do
    their work: benches, generators). All commands run in one Python process, which keeps this test short.
(d) No page names a file outside the repository (the shelf beside the checkout, or the notes it held).
"""

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPONENT_PAGES = ["agents/dreamer/PRESETS.md", "results/README.md", "results/reference/README.md",
                   "slurm/README.md", "suites/README.md"]
EXTENSIONS = ("py", "md", "yaml", "yml", "json", "jsonl", "csv", "toml", "cff", "sh", "txt", "gz", "tex", "png",
              "pdf", "cfg", "ini", "log")
REPORT_OUTPUTS = ("plots/", "tables/")  # inside a report's --out folder
# Files that are not in this repository by design: what a run directory or report holds, and other
# projects' files the pages cite (CleanRL's scripts, the official DreamerV2/V3 packages, Crafter).
ELSEWHERE = {"meta.json", "status.json", "scores.jsonl", "metrics.jsonl", "worker.log", "manifest.json",
             "loop.json", "wandb.json", "report.md", "bench.json", "ppo_atari.py", "ppo_continuous_action.py",
             "configs.yaml", "requires.txt", "requirements.txt", "scores/baselines.json", "stats.jsonl", "data.yaml"}
# Names of files outside the repository that pages once pointed to.
OUTSIDE = [r"\.\./shared", r"shared/docs", r"(?<![\w/.-])dreamer_spec\.md", r"(?<![\w/.-])evaluation\.md",
           r"(?<![\w/.-])DESIGN\.md"]

FENCE = re.compile(r"^ {0,3}(```+|~~~+)[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.S | re.M)
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
PLACEHOLDER = re.compile(r"[<>{}*$\[\]]|\.\.\.|(^|/)[A-Z][A-Z_]+(/|$)")
# The harness's refusals for what the machine lacks (suites/base.py, harness/plan.py, agents/official/setup.py).
MISSING_DEPENDENCY = re.compile(r"needs [\w, -]+: install the '\w+' extra|is not set up: run")
PYTHON_M = re.compile(r"(?:^|[\s;&|(])(?:[\w./-]*/)?python3?\s+-m\s+([\w.]+)([^;&|#>\n]*)")
MAKE = re.compile(r"(?:^|[\s;&|(`])make\s+([^;&|#>\n`]*)")


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "agents").rglob("README.md")),
             *(ROOT / p for p in COMPONENT_PAGES)]
    return [p for p in dict.fromkeys(found) if p.exists()]


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@cache
def repository() -> frozenset[str]:
    """Every file and folder a commit would hold (tracked, or untracked and not ignored) that exists."""
    try:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout: what a commit holds is what the pages may name")
    files = [f for f in listed if (ROOT / f).exists()]
    folders = {str(Path(f).parent.as_posix()) for f in files}
    folders |= {str(p.as_posix()) for f in folders for p in Path(f).parents}
    return frozenset(files) | frozenset(folders - {"."})


def ignored(path: str) -> bool:
    return subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", path],
                          capture_output=True).returncode == 0


def code_blocks(text: str) -> list[str]:
    """Fenced blocks with their continuation lines joined, then inline code spans."""
    blocks = [m.group(2).replace("\\\n", " ") for m in FENCE.finditer(text)]
    return blocks + [m.group(2) for m in INLINE.finditer(FENCE.sub("", text))]


def inline_words(text: str) -> list[str]:
    return [m.group(2).strip() for m in INLINE.finditer(FENCE.sub("", text)) if " " not in m.group(2).strip()]


def is_path_like(word: str) -> bool:
    """Starts with a top-level entry and has a '/', or ends in a file extension (not an extension alone)."""
    top = {entry.split("/")[0] for entry in repository()}
    if re.fullmatch(r"\.\w+", word):
        return False
    return (word.split("/")[0] in top and "/" in word) or re.search(rf"\.({'|'.join(EXTENSIONS)})/?$", word) is not None


def path_exists(word: str, page: Path) -> bool:
    word = word.rstrip("/").removeprefix("./")
    folder = page.parent.relative_to(ROOT).as_posix()
    candidates = {word, f"{folder}/{word}" if folder != "." else word}
    if any(_normalise(c) in repository() for c in candidates):
        return True
    return "/" not in word and any(entry.rsplit("/", 1)[-1] == word for entry in repository())


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
            else:
                return "../" + path  # above the repository
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def missing_paths(page: Path) -> list[str]:
    text, missing = page.read_text(), []
    for word in inline_words(text):
        if (PLACEHOLDER.search(word) or "=" in word or "://" in word or word.startswith(("/", "~", "-"))
                or word in ELSEWHERE or word.startswith(REPORT_OUTPUTS) or not is_path_like(word)
                or ignored(word.rstrip("/"))):
            continue
        if not path_exists(word, page):
            missing.append(f"{rel(page)}: `{word}`")
    folder = page.parent.relative_to(ROOT).as_posix()
    for target in (m.group(1) for m in LINK.finditer(FENCE.sub("", text))):
        target = target.split("#", 1)[0].split("?", 1)[0]
        if not target or re.match(r"[a-z][a-z0-9+.-]*:", target) or PLACEHOLDER.search(target):
            continue
        if _normalise(f"{folder}/{target}") not in repository():
            missing.append(f"{rel(page)}: ]({target})")
    return missing


def make_targets() -> set[str]:
    """The Makefile's rule targets, with its simple variables expanded ($(STAMP): .venv/.installed-stamp)."""
    text = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*[:?]?=\s*(.*?)\s*$", text, re.M))

    def expand(value: str) -> str:
        return re.sub(r"\$\((\w+)\)", lambda m: expand(variables.get(m.group(1), "")), value)

    rules = re.findall(r"^([^\s#:=][^:=]*?)\s*::?(?!=)", text, re.M)
    return {t for rule in rules for t in expand(rule).split() if t != ".PHONY"}


def make_commands(page: Path) -> list[str]:
    """The targets of every `make ...` in the page's code (variables such as ROOT=x left out)."""
    return [t.rstrip(").,;:") for block in code_blocks(page.read_text()) for m in MAKE.finditer(block)
            for t in m.group(1).split() if "=" not in t and not t.startswith("-")]


def python_commands(page: Path) -> list[tuple[str, list[str]]]:
    found = []
    for block in code_blocks(page.read_text()):
        for m in PYTHON_M.finditer(block):
            args = m.group(2).split()
            if not any(PLACEHOLDER.search(a) for a in args):
                found.append((m.group(1), args))
    return found


def test_paths_exist():
    missing = [m for page in pages() for m in missing_paths(page)]
    assert not missing, "paths the docs name that the repository lacks:\n" + "\n".join(missing)


def test_make_targets_exist():
    targets = make_targets()
    unknown = [f"{rel(page)}: make {t}" for page in pages() for t in make_commands(page) if t not in targets]
    assert not unknown, f"make targets not in the Makefile ({', '.join(sorted(targets))}):\n" + "\n".join(unknown)


def test_no_page_names_a_file_outside_the_repository():
    named = [f"{rel(page)}: {m.group(0)}" for page in pages() for pattern in OUTSIDE
             for m in re.finditer(pattern, page.read_text())]
    assert not named, "pages name files outside the repository:\n" + "\n".join(named)


# Run in a fresh interpreter: each command on stdin as [module, args]; prints the failures as JSON.
RUNNER = r"""
import contextlib, importlib, io, json, runpy, sys
failures = []
for module, args, mode in json.load(sys.stdin):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if mode == "import":
                importlib.import_module(module)
            elif mode == "plan":
                code = importlib.import_module(module).main([*args, "--plan"])
            else:
                sys.argv = [module, "--help"]
                try:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as stop:
                    code = stop.code or 0
        if mode != "import" and code != 0:
            failures.append([module, args, f"exit {code}: {out.getvalue()[-400:]}"])
    except BaseException as error:
        failures.append([module, args, f"{type(error).__name__}: {error}"[:400]])
print(json.dumps(failures))
"""


def how_to_check(module: str) -> str:
    """plan for harness.run, help for a module of this repository with an argparse parser, else import."""
    if module == "harness.run":
        return "plan"
    source = ROOT / (module.replace(".", "/") + ".py")
    return "help" if source.exists() and "ArgumentParser" in source.read_text() else "import"


def test_python_commands_run():
    checks: dict[tuple[str, tuple[str, ...]], str] = {}
    for page in pages():
        for module, args in python_commands(page):
            mode = how_to_check(module)
            checks.setdefault((module, tuple(args) if mode == "plan" else ()), mode)
    if not checks:
        pytest.skip("no python -m commands in the docs")
    commands = [[module, list(args), mode] for (module, args), mode in checks.items()]
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(commands), capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    failures = [f for f in json.loads(done.stdout.strip().splitlines()[-1]) if not MISSING_DEPENDENCY.search(f[2])]
    assert not failures, "commands the docs give that fail:\n" + "\n".join(
        f"python -m {m} {' '.join(a)}: {why}" for m, a, why in failures)
