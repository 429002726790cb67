"""Obtain the official DreamerV3 code the way a user's machine can, and a virtual environment for it.

    python -m agents.official.setup            # .official/ and .venv-official/ in the repository root
    python -m agents.official.setup --cuda     # the same with the official CUDA jax, on a GPU machine

Steps (each skipped when its result is already there, so reruns are offline):
1. read the package index's simple page for `dreamer` and find the `dreamer-3.3.1` sdist and its sha256
   (it must equal the hash pinned here);
2. download the sdist into `.official/` and verify its sha256;
3. extract it to `.official/dreamer-3.3.1/` and add what the sdist lacks: an empty `embodied/envs`
   package (its `embodied/__init__.py` imports one) and `dreamerv3/configs.yaml` (configs.py);
4. create `.venv-official` with the sdist's `requires.txt` (jax for the CPU instead of the cuda12 pin,
   no nvcc; with `--cuda`, the sdist's own jax[cuda12] and nvcc), versions fixed by PINS, and a .pth file
   so `import dreamerv3, embodied` finds the code. A venv set up with `--cuda` keeps the CUDA jax when the
   setup runs again without it (the tests and the bench call it so); remove the venv to go back to the CPU.
The sdist cannot be `pip install`ed: its setup.py reads a requirements.txt the tarball lacks.
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from agents.official.configs import write_configs

VERSION = "3.3.1"
SDIST = f"dreamer-{VERSION}.tar.gz"
SDIST_SHA256 = "b6dca5e1039bb632b48421ea0e2722b2d06557b2e94b24669272c69d6b983d03"
INDEX_PAGE = "https://pypi.org/simple/dreamer/"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".official"
VENV = REPO_ROOT / ".venv-official"
# The versions pip resolved for requires.txt with jax 0.4.33 on 2026-11-30 (Python 3.11), fixed so the
# official numbers do not move under the equivalence tests.
PINS = (
    "jax==0.4.33", "jaxlib==0.4.33", "numpy==1.26.4", "ml_dtypes==0.5.4", "optax==0.2.4", "chex==0.1.87",
    "ninjax==3.6.3", "elements==3.22.4", "portal==3.8.3", "granular==0.24.2", "scope==0.8.1",
    "einops==0.8.2", "jaxtyping==0.3.11", "scipy==1.17.1",
)
CUDA_JAX = "jax[cuda12]==0.4.33"  # the sdist's jax pin
DROPPED = ("ipdb",)  # interactive debugger
GPU_ONLY = ("nvidia-cuda-nvcc-cu12",)  # the GPU compiler
STAMP = ".dreamerbench-requirements"


class OfficialSetupError(RuntimeError):
    """A step of obtaining the official code failed; the message says which and what to do."""


def code_dir(cache: Path = CACHE) -> Path:
    """The extracted official code (holds `dreamerv3/` and `embodied/`)."""
    return cache / f"dreamer-{VERSION}"


def official_python(venv: Path = VENV) -> Path:
    """The official venv's python; a clear error when the setup has not run."""
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    if not python.exists() or not stamp.exists():
        raise OfficialSetupError(f"{venv} is not set up: run `python -m agents.official.setup` first")
    return python


class _Links(html.parser.HTMLParser):
    """The href of every anchor on a simple-index page, keyed by the anchor's text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href
            self._href = None


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise OfficialSetupError(
            f"could not download {url}: {error}. Check the network (or a proxy), or place {SDIST} "
            f"(sha256 {SDIST_SHA256}) in {CACHE} and rerun"
        ) from error


def sdist_url(page: bytes) -> str:
    """The sdist's URL from the simple page; its sha256 fragment must equal the pinned hash."""
    parser = _Links()
    parser.feed(page.decode())
    if SDIST not in parser.links:
        raise OfficialSetupError(f"{INDEX_PAGE} lists no {SDIST} (files: {sorted(parser.links)})")
    url, _, fragment = parser.links[SDIST].partition("#")
    listed = fragment.removeprefix("sha256=")
    if listed != SDIST_SHA256:
        raise OfficialSetupError(f"{INDEX_PAGE} gives sha256 {listed!r} for {SDIST}, pinned {SDIST_SHA256}")
    return url


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(cache: Path) -> Path:
    """The verified sdist in `cache`, downloaded unless a copy with the pinned hash is there."""
    target = cache / SDIST
    if target.exists() and sha256(target) == SDIST_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    url = sdist_url(_fetch(INDEX_PAGE))
    print(f"downloading {url}", flush=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(_fetch(url))
    if (digest := sha256(partial)) != SDIST_SHA256:
        partial.unlink()
        raise OfficialSetupError(f"{url} has sha256 {digest}, expected {SDIST_SHA256}; nothing kept")
    partial.replace(target)
    return target


def extract(sdist: Path, cache: Path) -> Path:
    """The sdist extracted to `code_dir(cache)`, with the two files it lacks written by us."""
    folder = code_dir(cache)
    if not (folder / "dreamerv3" / "agent.py").exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp, tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
            shutil.rmtree(folder, ignore_errors=True)
            (Path(tmp) / folder.name).rename(folder)
    envs = folder / "embodied" / "envs"
    envs.mkdir(exist_ok=True)
    (envs / "__init__.py").touch()
    write_configs(folder / "dreamerv3" / "configs.yaml")
    return folder


def requirements(folder: Path, cuda: bool = False) -> list[str]:
    """The sdist's requires.txt: for a CPU machine jax[cpu] at the pinned version and the GPU-only pins
    dropped; with `cuda`, its own CUDA jax and nvcc."""
    listed = (folder / "dreamer.egg-info" / "requires.txt").read_text().split()
    if CUDA_JAX not in listed:
        raise OfficialSetupError(f"unexpected requires.txt in {folder}: {listed}")
    kept = [req for req in listed if not req.startswith(DROPPED + (() if cuda else GPU_ONLY))]
    return kept if cuda else ["jax[cpu]==0.4.33" if req.startswith("jax[") else req for req in kept]


def has_cuda(venv: Path = VENV) -> bool:
    """Whether `venv` was set up with the official CUDA jax (`--cuda`)."""
    stamp = venv / STAMP
    return stamp.exists() and CUDA_JAX in stamp.read_text().split()


def make_venv(folder: Path, venv: Path, cuda: bool = False) -> Path:
    """`venv` with the official requirements and a .pth to the code; pip runs only when they changed."""
    reqs = requirements(folder, cuda) + list(PINS)
    wanted = "\n".join(reqs) + "\n"
    stamp = venv / STAMP
    if not (stamp.exists() and stamp.read_text() == wanted):
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        command = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *reqs]
        print("installing the official requirements into", venv, flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise OfficialSetupError(
                f"pip could not install the official requirements into {venv} "
                f"(exit {done.returncode}):\n{done.stderr[-3000:]}"
            )
        stamp.write_text(wanted)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(site) / "dreamer_official.pth").write_text(f"{folder}\n")
    return venv / "bin" / "python"


def setup(cache: Path = CACHE, venv: Path = VENV, cuda: bool = False) -> Path:
    """Run every step; returns the official venv's python. `cuda`: the official CUDA jax, which a venv
    once set up with it keeps (pip leaves a CUDA plugin in place, so a CPU stamp would be a lie)."""
    folder = extract(download(cache), cache)
    return make_venv(folder, venv, cuda or has_cuda(venv))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the sdist and its code go")
    parser.add_argument("--venv", type=Path, default=VENV, help="the official virtual environment")
    parser.add_argument("--cuda", action="store_true",
                        help="install the official CUDA jax (jax[cuda12]==0.4.33 and nvcc) for a GPU machine; "
                             "the venv keeps it on later setups")
    args = parser.parse_args(argv)
    try:
        python = setup(args.cache.resolve(), args.venv.resolve(), args.cuda)
    except OfficialSetupError as error:
        sys.exit(f"error: {error}")
    print(f"official DreamerV3 {VERSION}: {code_dir(args.cache.resolve())}\npython: {python}")


if __name__ == "__main__":
    main()
