"""Write docs/reference/cli.md from the `--help` of every command-line entry point.

    python -m harness.docs_cli            # rewrites docs/reference/cli.md
    python -m harness.docs_cli --check    # exits 1 if the page differs from what the commands print now

tests/test_docs_cli.py runs the check, so the page cannot go stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"

# (module, what it is for), in the order a user meets them
COMMANDS = (
    ("harness.run", "start, resume or plan runs: suites x agents x tasks x seeds, sweeps, local or SLURM"),
    ("harness.status", "the state of every run under a root"),
    ("harness.bench", "speed figures on this machine, and against the official code and sheeprl"),
    ("harness.gpucheck", "check a GPU node in one command: devices, equivalence, bench, a Dreamer and a PPO run"),
    ("results.report", "tables, plots and reproduction verdicts from runs and published scores"),
    ("results.fidelity", "the study pages of ours beside the official DreamerV3 (make fidelity)"),
    ("results.paper", "the papers' headline tables, regenerated from the published data"),
    ("results.calibration", "the verdicts' error rates, measured by simulation on the published runs"),
    ("agents.official.setup", "obtain the official DreamerV3 code and its virtual environment"),
)


def help_text(module: str) -> str:
    """What `python -m MODULE --help` prints, at a fixed width so the page does not depend on the terminal."""
    env = {**os.environ, "COLUMNS": "100", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                         cwd=PAGE.parents[2], timeout=300, check=True).stdout
    return out.rstrip() + "\n"


def render() -> str:
    parts = ["# Command-line reference\n",
             "Generated from each command's `--help` by `python -m harness.docs_cli`; a test checks that this page",
             "is current. Run every command from the repository root with the project's Python (`.venv/bin/python`).\n"]
    parts += [f"- [`python -m {m}`](#{m.replace('.', '')}): {what}" for m, what in COMMANDS]
    for module, what in COMMANDS:
        parts.append(f"\n## {module}\n\n{what[0].upper()}{what[1:]}.\n\n```text\n{help_text(module)}```")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text() == text else "docs/reference/cli.md is stale: run python -m harness.docs_cli")
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
